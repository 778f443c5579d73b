"""Reads of payments, over common.records.PurchaseRecords.

One payment is read through the shared two-level cache as a plain dict;
every write that changes it (create, refund) drops the entry once its transaction commits
(services.py). Another customer's payment, a tombstone and a malformed id all read as
"no such payment". Lists come straight from the database, newest first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from common.records import PurchaseRecords
from common.serializers import api_datetime
from payment_svc.payments.conf import config
from payment_svc.payments.models import Payment


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


payment_records = PurchaseRecords(
    Payment, namespace=lambda: config().cache_namespace, to_dict=payment_to_dict
)
"""The payments' cache and reads (common.records); services drop a changed one from it."""


def payment_find(*, payment_id: uuid.UUID) -> Payment | None:
    """The payment row itself, from the database (for writes: never from the cache)."""
    return payment_records.find(payment_id)


def payment_get(*, payment_id: uuid.UUID) -> dict[str, Any] | None:
    """One payment (as payment_to_dict) through the cache, or None if there is none."""
    return payment_records.get(payment_id)


def payment_get_for_customer(*, payment_id: Any, customer_id: int) -> dict[str, Any] | None:
    """The customer's own payment with this id, or None (see PurchaseRecords.get_owned)."""
    return payment_records.get_owned(payment_id, customer_id=customer_id)


def payment_list(*, customer_id: int, status: str | None = None) -> QuerySet[Payment]:
    """A customer's payments, newest first; optionally of one status."""
    return payment_records.list_for(customer_id=customer_id, status=status)


def payment_find_many(*, payment_ids: Iterable[uuid.UUID]) -> list[Payment]:
    """The payments with these ids straight from the database, by id; absent ones left out."""
    return payment_records.find_many(payment_ids)
