"""Purchases and the step history of their sagas.

A purchase's id is the saga's id, and the id of the order and the payment the saga
creates. The purchase service writes a purchase once (PENDING, with its outbox row);
after that only the orchestrator's `purchase-result` events change it.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from common.contract.events import MAX_END_REASON_LENGTH, PurchaseStatus

STATUS_CHOICES = [(s.value, s.value.replace("_", " ").capitalize()) for s in PurchaseStatus]
IDEMPOTENCY_KEY_MAX_LENGTH = 128


class Purchase(models.Model):
    """One purchase request of a customer and where its saga stands.

    `items` are the merged lines with the unit price CheckProducts answered at the
    time: [{"product_id": int, "quantity": int, "unit_price": int}]. Money is an
    integer in the currency's minor unit. `last_sequence` is the sequence of the
    newest `purchase-result` event applied to `status`, so an older or repeated event
    never moves it back.

    `response_status`/`response_body` keep the first answer of the POST that created
    the purchase, the body as the exact JSON text sent (jsonb would reorder its keys):
    a retry with the same `Idempotency-Key` gets that answer byte for byte.
    `request_fingerprint` (sha256 of the canonical JSON body) tells a retry from a
    different request that reuses the key.

    `cancel_requested_at` is when the customer first asked to cancel (its
    PurchaseCancelRequested left with it); the purchase stays PENDING until the saga
    ends. `reason` is the final event's: "cancelled", "deadline" or "" (a step's own
    outcome).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer_id = models.BigIntegerField()
    items = models.JSONField()
    amount = models.BigIntegerField()
    currency_code = models.CharField(max_length=3)
    status = models.CharField(
        max_length=20, choices=STATUS_CHOICES, default=PurchaseStatus.PENDING.value
    )
    last_sequence = models.IntegerField(default=0)
    # db_default: rows written by plain SQL that predates the column (older code) get "".
    reason = models.CharField(
        max_length=MAX_END_REASON_LENGTH, blank=True, default="", db_default=""
    )
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "purchase"
        constraints = [
            models.UniqueConstraint(
                fields=["customer_id", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="purchase_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="purchase_amount_not_negative"),
        ]
        indexes = [
            models.Index(fields=["customer_id", "-created_at"], name="purchase_customer_newest"),
            models.Index(fields=["status", "-created_at"], name="purchase_status_newest"),
            models.Index(fields=["-created_at"], name="purchase_newest"),
        ]

    def __str__(self) -> str:
        return f"purchase {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return PurchaseStatus(self.status).is_final


class PurchaseStepEvent(models.Model):
    """One step change of a purchase's saga, as the orchestrator published it.

    `message_id` is the orchestrator's outbox id: a redelivered message is stored once.
    `purchase` carries no database constraint: an event is recorded even if no such
    purchase is known here (it cannot normally happen, since a purchase commits before
    its PurchaseCreated leaves, but a step must never be lost to a missing row).
    """

    message_id = models.CharField(max_length=64, unique=True)
    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_column="purchase_id",
        db_index=False,  # the (purchase, id) index serves it
        related_name="steps",
    )
    step = models.CharField(max_length=32)
    status = models.CharField(max_length=32)
    purchase_status = models.CharField(max_length=20, blank=True, default="")
    sequence = models.IntegerField(default=0)
    attempt = models.PositiveIntegerField(default=1)
    error = models.TextField(blank=True, default="")
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="RETRY only: when the step's call is due again."
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "purchase_step_event"
        ordering = ["id"]
        indexes = [models.Index(fields=["purchase", "id"], name="purchase_step_event_order")]

    def __str__(self) -> str:
        return f"{self.purchase_id} {self.step} {self.status}"


class PurchaseCancelKey(models.Model):
    """An `Idempotency-Key` a cancel request bound, with the first answer it got.

    A retry of the cancel with the key answers `response_body` byte for byte; the key
    with another request (a cancel of another purchase) answers 422, as on the POST.
    Only an accepted cancel (202) binds its key. A customer's cancel keys are their own
    namespace, apart from the POST's (`Purchase.idempotency_key`).
    """

    customer_id = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    purchase = models.ForeignKey(
        Purchase, on_delete=models.CASCADE, db_column="purchase_id", related_name="cancel_keys"
    )
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "purchase_cancel_key"
        constraints = [
            models.UniqueConstraint(
                fields=["customer_id", "idempotency_key"], name="purchase_cancel_key_unique"
            )
        ]

    def __str__(self) -> str:
        return f"cancel key {self.idempotency_key!r} of {self.purchase_id}"
