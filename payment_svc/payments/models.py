"""Payments: what a purchase was charged.

A payment's id is its purchase id (as in the seed). Money is an integer amount in
the currency's minor unit.

A REFUNDED payment without a customer is a tombstone: RefundPayment arrived before
CreatePayment (a compensation overtook its command), and the row keeps a late
CreatePayment for that purchase from charging anything (services.payment_create).
"""

from __future__ import annotations

from django.db import models


class Payment(models.Model):
    class Status(models.TextChoices):
        COMPLETED = "COMPLETED"
        REFUNDED = "REFUNDED"

    id = models.UUIDField(primary_key=True, help_text="the purchase id")
    customer_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="empty on a tombstone"
    )
    amount = models.BigIntegerField(default=0, help_text="in the currency's minor unit")
    currency_code = models.CharField(max_length=3, blank=True, default="", help_text="ISO 4217")
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["customer_id", "-created_at"], name="payment_customer_recent")
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="payment_amount_gte_0"),
        ]

    def __str__(self) -> str:
        return f"payment {self.id} ({self.status})"

    @property
    def is_tombstone(self) -> bool:
        """Refunded before it was ever created: no customer, nothing charged."""
        return self.customer_id is None
