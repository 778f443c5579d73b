"""The catalog: categories, products with their stock, and inventory reservations.

Money is an integer amount in the currency's minor unit. Stock never goes below
zero: the database refuses it (CHECK constraint), and reservations only ever
decrement with a conditional UPDATE (see services.inventory_reserve).
"""

from __future__ import annotations

from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    brand_name = models.CharField(max_length=100, blank=True, default="")
    price = models.BigIntegerField(help_text="in the currency's minor unit")
    inventory = models.BigIntegerField(help_text="units in stock, never below zero")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_gte_0"),
            models.CheckConstraint(
                condition=models.Q(inventory__gte=0), name="product_inventory_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.id})"


class Reservation(models.Model):
    """What the saga's inventory step took for one purchase, keyed by its id.

    RESERVED: the lines are taken from stock. RELEASED: they were given back, or
    (with no lines) a release came first and left a tombstone, so a late reserve
    for that purchase does nothing.
    """

    class State(models.TextChoices):
        RESERVED = "RESERVED"
        RELEASED = "RELEASED"

    purchase_id = models.UUIDField(primary_key=True)
    state = models.CharField(max_length=16, choices=State.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.purchase_id} {self.state}"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.BigIntegerField()

    class Meta:
        ordering = ["product_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["reservation", "product"], name="reservation_line_unique_product"
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="reservation_line_quantity_gt_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} x {self.quantity}"
