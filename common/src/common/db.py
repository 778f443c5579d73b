"""Idempotent writes of the rows a saga step owns, keyed by the purchase id.

A step's row is claimed with INSERT ... ON CONFLICT (key) DO NOTHING (`claim_row`): when
a duplicate races with the first call, PostgreSQL makes it wait for the first one's
transaction and then see its committed row, so twenty identical calls write one row.
A compensation claims the same key (`transition_once`), so one that overtakes its step
leaves a tombstone in the final state and the late step finds it and does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db import connection
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
