"""Payments: what a purchase was charged.

A payment's id is its purchase id (as in the seed). Money is an integer amount in
the currency's minor unit.

A REFUNDED payment without a customer is a tombstone: RefundPayment arrived before
CreatePayment (a compensation overtook its command), and the row keeps a late
CreatePayment for that purchase from charging anything (services.payment_create).
"""

from __future__ import annotations

from django.db import models

from common.records import PurchaseRecord


class Payment(PurchaseRecord):
    """A payment: id, customer, amount and timestamps as every purchase's record
    (common.records); a tombstone has charged nothing."""

    class Status(models.TextChoices):
        COMPLETED = "COMPLETED"
        REFUNDED = "REFUNDED"

    currency_code = models.CharField(max_length=3, blank=True, default="", help_text="ISO 4217")
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)

    def __str__(self) -> str:
        return f"payment {self.id} ({self.status})"
