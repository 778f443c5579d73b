"""Idempotent writes of the rows a saga step owns, keyed by the purchase id.

A step's row is claimed with INSERT ... ON CONFLICT (key) DO NOTHING (`claim_row`): when
a duplicate races with the first call, PostgreSQL makes it wait for the first one's
transaction and then see its committed row, so twenty identical calls write one row.
A compensation claims the same key (`transition_once`), so one that overtakes its step
leaves a tombstone in the final state and the late step finds it and does nothing.
`compensate_once` is that compensation as a service runs it (a `Compensation`: cancel an
order, refund a payment), with its cache entry dropped and its log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

ModelT = TypeVar("ModelT", bound=Model)


def claim_row(
    model: type[Model],
    *,
    key: str,
    values: Mapping[str, Any],
    stamped_at: datetime | None = None,
) -> bool:
    """Insert a row of `model` unless one with the same `key` exists; True if this call
    inserted it.

    `values` are the row's columns, `key` among them; `created_at` and `updated_at` are
    `stamped_at`, or the database transaction's now() without one. Waits for a concurrent
    transaction that inserted the same key, then sees its row (or inserts this one if
    that transaction rolled back). Run it inside the caller's transaction.
    """
    quote = connection.ops.quote_name
    columns = [*values, "created_at", "updated_at"]
    params: list[Any] = list(values.values())
    if stamped_at is None:
        stamps = ["now()", "now()"]
    else:
        stamps = ["%s", "%s"]
        params += [stamped_at, stamped_at]
    placeholders = ", ".join(["%s"] * len(values) + stamps)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)}"
            f" ({', '.join(quote(column) for column in columns)}) VALUES ({placeholders})"
            f" ON CONFLICT ({quote(key)}) DO NOTHING RETURNING {quote(key)}",
            params,
        )
        return cursor.fetchone() is not None


@dataclass(frozen=True)
class Transition(Generic[ModelT]):
    """What `transition_once` left: the row; `changed` if this call moved it to the
    state; `tombstone` if there was no row and this call recorded one."""

    row: ModelT
    changed: bool
    tombstone: bool


def transition_once(
    model: type[ModelT], *, pk: Any, status: str, tombstone: Mapping[str, Any]
) -> Transition[ModelT]:
    """Move the row with primary key `pk` (column `id`) to `status`, once.

    No row yet: record a tombstone in `status` (with the `tombstone` columns), so that a
    step arriving later finds it and does nothing. Already in `status`: nothing changes.
    Run it inside the caller's transaction (the row is locked until it ends).
    """
    values = {"id": pk, **tombstone, "status": str(status)}
    if claim_row(model, key="id", values=values, stamped_at=timezone.now()):
        return Transition(model._default_manager.get(pk=pk), changed=False, tombstone=True)
    row: Any = model._default_manager.select_for_update().get(pk=pk)
    if row.status == status:
        return Transition(row, changed=False, tombstone=False)
    row.status = status
    row.save(update_fields=["status", "updated_at"])
    return Transition(row, changed=True, tombstone=False)


@dataclass(frozen=True)
class Compensation(Generic[ModelT]):
    """A compensating step that moves a purchase's row of `model` to the final `status`
    once (cancel an order, refund a payment), single (`compensate_once`) or in a batch
    (common.batch_writes.compensate_each).

    `tombstone`: the columns of the row it records when there is none yet; `invalidate`
    drops the cached copies of the rows it touched once the transaction commits. The
    log lines: `moved` (one key) / `moved_many` (a count and the keys) when it changed
    rows, `recorded` / `recorded_many` when it recorded tombstones.
    """

    model: type[ModelT]
    status: str
    tombstone: Mapping[str, Any]
    invalidate: Callable[..., None]
    moved: str
    recorded: str
    moved_many: str
    recorded_many: str


def compensate_once(
    step: Compensation[ModelT], *, pk: Any, logger: logging.Logger
) -> Transition[ModelT]:
    """`step` for the row with primary key `pk`, in a transaction of its own (see
    `transition_once`), the cached copy dropped when the row changed or was recorded.

    With no row yet it succeeds and changes nothing a customer sees, but records a
    tombstone so that the step arriving later does nothing; a repeat answers the row
    as it is."""
    with transaction.atomic():
        done = transition_once(step.model, pk=pk, status=step.status, tombstone=step.tombstone)
        if done.tombstone:
            logger.info(step.recorded, pk)
        if done.tombstone or done.changed:
            step.invalidate(pk)
    if done.changed:
        logger.info(step.moved, pk)
    return done
