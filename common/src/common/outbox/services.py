"""Writes to the outbox: enqueue events inside the caller's transaction, prune old rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from opentelemetry.context import Context

from common.observability.tracing import inject_context
from common.outbox.models import OutboxMessage

NOTIFY_CHANNEL = "outbox"

# A statement and its parameters, for a caller's writes sent along with the outbox's.
Statement = tuple[str, Sequence[Any]]


class OutboxOutsideTransaction(RuntimeError):
    """`outbox_enqueue` was called without an open transaction: the event could leave
    without the change it describes (or the change without its event)."""


@dataclass(frozen=True)
class OutboxEvent:
    """One event for `outbox_enqueue_many`.

    `context` is the trace context the event continues (say, the one a consumed message
    carried, when a batch handler writes an event per message); default: the current one.
    """

    topic: str
    key: str
    payload: dict[str, Any]
    headers: dict[str, str] | None = None
    context: Context | None = None


def outbox_enqueue(
    *,
    topic: str,
    key: str,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> int:
    """Store one event to publish once the caller's transaction commits; answer its row id.

    `outbox_enqueue_many` of one: inside `transaction.atomic()` together with the change
    the event describes, with `pg_notify('outbox')` once per transaction (PostgreSQL
    delivers it at commit, so the relay publishes at once instead of at its next idle
    wake-up), and the current trace context in the row's headers, so the relay and the
    consumers of the event continue the trace of the change that caused it.
    """
    [row_id] = outbox_enqueue_many(
        [OutboxEvent(topic=str(topic), key=key, payload=payload, headers=headers)]
    )
    return row_id


def outbox_enqueue_many(
    messages: Iterable[OutboxEvent], *, along_with: Sequence[Statement] = ()
) -> list[int]:
    """Store many events with one INSERT; answer their row ids, in the order given.

    As `outbox_enqueue`, in the caller's transaction (raises `OutboxOutsideTransaction`
    otherwise) and with one `pg_notify('outbox')` per transaction however many events
    are written. Each row carries its event's trace context, or the current one.
    Plain SQL: building a model instance per row cost more than the INSERT itself.

    `along_with`: the caller's own writes of this transaction, (sql, params) each, sent
    with the INSERT and the NOTIFY in one round trip and run first, in order (also when
    there is no event): a transaction of several writes costs one exchange.
    """
    connection = _open_transaction("outbox_enqueue_many")
    params: list[Any] = []
    for event in messages:
        headers = inject_context(dict(event.headers or {}), event.context)
        params += (
            str(event.topic),
            event.key,
            json.dumps(event.payload, cls=DjangoJSONEncoder),
            json.dumps(headers, cls=DjangoJSONEncoder),
        )
    statements = list(along_with)
    notify = bool(params) and connection.vendor == "postgresql"
    notify = notify and not _relay_notified_in(connection)
    if notify:
        statements.append(("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL]))
    if params:
        rows = ", ".join(["(%s, %s, %s::jsonb, %s::jsonb, now())"] * (len(params) // 4))
        # Last, so its RETURNING is what the round trip answers. PostgreSQL answers the
        # ids in VALUES order, so the relay publishes them in the order given.
        statements.append(
            (
                "INSERT INTO outbox_message (topic, key, payload, headers, created_at)"
                f" VALUES {rows} RETURNING id",
                params,
            )
        )
    if not statements:
        return []
    with connection.cursor() as cursor:
        # One exchange for every statement (psycopg2 binds parameters client-side).
        cursor.execute(
            "; ".join(sql for sql, _ in statements),
            [value for _, values in statements for value in values],
        )
        ids = [row_id for (row_id,) in cursor.fetchall()] if params else []
    if notify:
        _mark_relay_notified(connection)
    return ids


def _open_transaction(caller: str) -> BaseDatabaseWrapper:
    """Answer the default connection; raise unless a transaction is open on it."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction(f"{caller} must run inside transaction.atomic()")
    return connection


def _relay_notified() -> None:
    """The mark of a transaction that has already woken the relay (a no-op at commit)."""


def _relay_notified_in(connection: BaseDatabaseWrapper) -> bool:
    # Entries are (savepoint ids, callback, robust): look for our mark.
    return any(entry[1] is _relay_notified for entry in connection.run_on_commit)


def _mark_relay_notified(connection: BaseDatabaseWrapper) -> None:
    """Mark this transaction as having sent its NOTIFY (PostgreSQL folds repeats into
    one anyway; the mark saves the statement). The mark is an `on_commit` callback, so
    Django's own bookkeeping drops it exactly when the NOTIFY is gone: at commit
    (delivered), at rollback, and when the savepoint it was sent in rolls back (then the
    next write notifies again)."""
    transaction.on_commit(_relay_notified, using=connection.alias)


def outbox_prune(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete rows published more than `older_than` ago; answer how many.

    Published rows are kept a while only to help investigate a saga; unpublished
    rows are never deleted.
    """
    cutoff = timezone.now() - older_than
    deleted, _ = OutboxMessage.objects.filter(published_at__lt=cutoff).delete()
    return deleted
