"""Orders: what a purchase bought, at the prices and under the names the customer was shown.

An order's id is its purchase id (as in the seed), so the saga, the customer and the
shop all name it the same way. The unit prices and product names are the purchase's
(they travel with the saga), so the order's amount is what the payment charges. Money
is an integer amount in the currency's minor unit; the currency is the catalog's, so
the order does not repeat it.

A CANCELLED order without lines and without a customer is a tombstone: CancelOrder
arrived before CreateOrder (a compensation overtook its command), and the row keeps a
late CreateOrder for that purchase from creating anything (services.order_create).
"""

from __future__ import annotations

from django.db import models

from common.records import PurchaseRecord

MAX_NAME_LENGTH = 200
"""The longest product name a line keeps (a product's own limit)."""


class Order(PurchaseRecord):
    """An order: id, customer, amount and timestamps as every purchase's record
    (common.records); a tombstone has no lines either."""

    class Status(models.TextChoices):
        CREATED = "CREATED"
        CANCELLED = "CANCELLED"

    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)

    def __str__(self) -> str:
        return f"order {self.id} ({self.status})"


class OrderLine(models.Model):
    """One product of an order, under the name and at the unit price the customer was
    shown (the purchase's)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product_id = models.BigIntegerField()
    # Empty for a line whose purchase carried no name (one in flight when names were
    # added, and the lines written while the column was gone). The database default
    # lets a process of the code before it insert lines while a deploy rolls.
    name = models.CharField(
        max_length=MAX_NAME_LENGTH,
        blank=True,
        db_default="",
        help_text="the product's name the customer was shown",
    )
    unit_price = models.BigIntegerField(help_text="the price the purchase was made at")
    quantity = models.BigIntegerField()
    line_total = models.BigIntegerField(help_text="unit_price x quantity")

    class Meta:
        ordering = ["product_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "product_id"], name="order_line_unique_product"
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="order_line_quantity_gt_0"
            ),
            models.CheckConstraint(
                condition=models.Q(unit_price__gte=0), name="order_line_unit_price_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(line_total=models.F("unit_price") * models.F("quantity")),
                name="order_line_total_is_price_x_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or f'product {self.product_id}'} x {self.quantity}"
