"""Reads of payments.

One payment is read through the shared two-level cache (common.cache), as a plain
dict; every write that changes it (create, refund) invalidates the entry after its
transaction commits (services.py), so this process sees the change at once and every
other process within the cache's local lifetime (one second). A miss is cached too
(briefly), which keeps a flood of unknown ids off the database.

Ownership is checked after the read: a payment another customer owns, a tombstone
(no customer) and an id that is not a UUID all read as "no such payment".
Lists come straight from the database, newest first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from common.cache import ReadThroughCache, process_cache
from common.ids import read_owned
from common.serializers import api_datetime
from payment_svc.payments.conf import config
from payment_svc.payments.models import Payment


def payment_cache() -> ReadThroughCache:
    """The payment cache of this process, named by settings (tests use their own name)."""
    return process_cache(config().cache_namespace)


def payment_cache_key(payment_id: uuid.UUID) -> str:
    return str(payment_id)


def payment_to_dict(payment: Payment) -> dict[str, Any]:
    """A payment as cached and as the API answers it: plain JSON values."""
    return {
        "id": str(payment.id),
        "customer_id": payment.customer_id,
        "amount": payment.amount,
        "currency_code": payment.currency_code,
        "status": payment.status,
        "created_at": api_datetime(payment.created_at),
        "updated_at": api_datetime(payment.updated_at),
    }


def payment_find(*, payment_id: uuid.UUID) -> Payment | None:
    """The payment row itself, from the database (for writes: never from the cache)."""
    return Payment.objects.filter(id=payment_id).first()


def payment_load(payment_id: uuid.UUID) -> dict[str, Any] | None:
    """One payment straight from the database (the cache's loader)."""
    payment = payment_find(payment_id=payment_id)
    return payment_to_dict(payment) if payment is not None else None


def payment_get(*, payment_id: uuid.UUID) -> dict[str, Any] | None:
    """One payment (as payment_to_dict) through the cache, or None if there is none."""
    return payment_cache().get(payment_cache_key(payment_id), lambda: payment_load(payment_id))


def payment_get_for_customer(*, payment_id: Any, customer_id: int) -> dict[str, Any] | None:
    """The customer's own payment with this id, or None: unknown, malformed, a tombstone,
    or another customer's all answer None, so a caller cannot tell them apart."""
    return read_owned(
        payment_id, customer_id=customer_id, read=lambda parsed: payment_get(payment_id=parsed)
    )


def payment_list(*, customer_id: int, status: str | None = None) -> QuerySet[Payment]:
    """A customer's payments, newest first; optionally of one status."""
    payments = Payment.objects.filter(customer_id=customer_id).order_by("-created_at", "id")
    if status is not None:
        payments = payments.filter(status=status)
    return payments


def payment_find_many(*, payment_ids: Iterable[uuid.UUID]) -> list[Payment]:
    """The payments with these ids straight from the database (the consistency audit
    wants what is, not what a cache remembers), by id; absent ones left out."""
    return list(Payment.objects.filter(id__in=list(payment_ids)).order_by("id"))
