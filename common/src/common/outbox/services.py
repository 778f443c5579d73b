"""Writes to the outbox: enqueue an event inside the caller's transaction, prune old rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.observability.tracing import inject_context
from common.outbox.models import OutboxMessage

NOTIFY_CHANNEL = "outbox"


class OutboxOutsideTransaction(RuntimeError):
    """`outbox_enqueue` was called without an open transaction: the event could leave
    without the change it describes (or the change without its event)."""


def outbox_enqueue(
    *,
    topic: str,
    key: str,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> OutboxMessage:
    """Store an event to publish once the caller's transaction commits.

    Must run inside `transaction.atomic()` together with the change the event
    describes. Also sends `pg_notify('outbox')`, which PostgreSQL delivers at commit,
    so the relay publishes at once instead of at its next idle wake-up. The current
    trace context travels in the row's headers, so the relay and the consumers of the
    event continue the trace of the change that caused it.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction("outbox_enqueue must run inside transaction.atomic()")
    message = OutboxMessage.objects.create(
        topic=str(topic), key=key, payload=payload, headers=inject_context(dict(headers or {}))
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    return message


def outbox_prune(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete rows published more than `older_than` ago; answer how many.

    Published rows are kept a while only to help investigate a saga; unpublished
    rows are never deleted.
    """
    cutoff = timezone.now() - older_than
    deleted, _ = OutboxMessage.objects.filter(published_at__lt=cutoff).delete()
    return deleted
