"""Reads of the purchase service."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from common.contract.events import PurchaseStatus
from purchase_svc.purchases.models import Purchase, PurchaseCancelKey, PurchaseStepEvent


def purchase_get(*, purchase_id: uuid.UUID | str, customer_id: int) -> Purchase | None:
    """The customer's purchase, or None: an unknown id and another's purchase alike, so
    ids of others cannot be probed."""
    return Purchase.objects.filter(id=purchase_id, customer_id=customer_id).first()


def purchase_list(*, customer_id: int, status: PurchaseStatus | None = None) -> QuerySet[Purchase]:
    """The customer's purchases, newest first, optionally of one status."""
    purchases = Purchase.objects.filter(customer_id=customer_id)
    if status is not None:
        purchases = purchases.filter(status=status.value)
    return purchases.order_by("-created_at", "-id")


def purchase_steps(*, purchase_id: uuid.UUID | str) -> list[PurchaseStepEvent]:
    """The step history of a purchase in the saga's order (sequence, then arrival)."""
    return list(
        PurchaseStepEvent.objects.filter(purchase_id=purchase_id).order_by("sequence", "id")
    )


def purchase_steps_after(*, purchase_id: uuid.UUID | str, after_id: int) -> list[PurchaseStepEvent]:
    """Steps recorded after the step `after_id`, in the order they were recorded.

    Recording order is commit order here: one consumer records a purchase's steps one
    transaction after another (they share a Kafka key, hence a partition), so a stream
    that remembers the last id it sent never skips a step.
    """
    return list(
        PurchaseStepEvent.objects.filter(purchase_id=purchase_id, id__gt=after_id).order_by("id")
    )


def purchase_status_as_of(*, purchase_id: uuid.UUID | str, after_id: int) -> str:
    """The purchase's status as the steps up to `after_id` left it: what a client that
    has seen them knows. PENDING before any step, as every purchase starts.

    The same rule as the consumer's: the step of the highest sequence decides (the
    first of equal ones); sequence 0 never moves a status.
    """
    if after_id <= 0:
        return PurchaseStatus.PENDING.value
    newest = (
        PurchaseStepEvent.objects.filter(purchase_id=purchase_id, id__lte=after_id, sequence__gt=0)
        .exclude(purchase_status="")
        .order_by("-sequence", "id")
        .values_list("purchase_status", flat=True)
        .first()
    )
    return newest or PurchaseStatus.PENDING.value


def purchase_find_by_key(*, customer_id: int, idempotency_key: str) -> Purchase | None:
    """The purchase an earlier request of this customer with this Idempotency-Key
    created, or None."""
    # Plain SQL: asked before every keyed POST, and the queryset's compilation cost
    # more than the indexed lookup itself. The unique key allows one row at most.
    return next(
        iter(
            Purchase.objects.raw(
                "SELECT * FROM purchase WHERE customer_id = %s AND idempotency_key = %s",
                [customer_id, idempotency_key],
            )
        ),
        None,
    )


def cancel_key_find(*, customer_id: int, idempotency_key: str) -> PurchaseCancelKey | None:
    """The cancel an earlier request of this customer with this Idempotency-Key made
    (with its purchase), or None."""
    return (
        PurchaseCancelKey.objects.select_related("purchase")
        .filter(customer_id=customer_id, idempotency_key=idempotency_key)
        .first()
    )
