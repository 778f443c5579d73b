"""Batch calls handled as a whole: set-based forms of common.db's writes.

A batch call (CreateOrderBatch, say: one request carrying a wave of sagas' calls) must
answer each item exactly as its single call would. Run item by item, that would cost the
single call's statements and a savepoint per item; a batch handled as a whole decides
its items in Python and writes all its rows in a constant number of statements instead:

- `claim_rows`: `claim_row` for many rows, in one INSERT ... ON CONFLICT DO NOTHING;
- `insert_rows`: one multi-row INSERT of rows no other transaction can write (the lines
  of the orders this transaction has just claimed, say);
- `transition_each`: `transition_once` for many keys, in at most three statements;
- `checked`: a check's value, or the refusal it raised, as an item's outcome for
  `common.grpc.servicer.answer_all`.

Lock order: these take their keys in ascending order, claims before row locks, as the
single calls do. PostgreSQL inserts the rows of a VALUES list, and locks the rows of an
ordered SELECT ... FOR UPDATE, one by one in that order, so concurrent batches over the
same keys wait for each other in one order and cannot deadlock. A caller must not lock
a row (SELECT ... FOR UPDATE) before it claims others: it would hold that lock while it
waits on another transaction's claim, which may itself be waiting for that lock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection
from django.db.models import Model

from common.errors import ApplicationError

P = ParamSpec("P")
T = TypeVar("T")


# ------------------------------------------------------------------ writes


def _insert_sql(model: type[Model], columns: Sequence[str], rows: int) -> str:
    quote = connection.ops.quote_name
    row = f"({', '.join(['%s'] * len(columns))})"
    return (
        f"INSERT INTO {quote(model._meta.db_table)}"
        f" ({', '.join(quote(column) for column in columns)}) VALUES {', '.join([row] * rows)}"
    )


def insert_rows(model: type[Model], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` of `model` (each with the same columns, the first's) in one statement.

    For rows no concurrent transaction can insert too; run it inside the caller's
    transaction. No model instances, no signals, no RETURNING: the batch knows its rows.
    """
    if not rows:
        return
    columns = list(rows[0])
    with connection.cursor() as cursor:
        cursor.execute(
            _insert_sql(model, columns, len(rows)),
            [row[column] for row in rows for column in columns],
        )


def claim_rows(
    model: type[Model],
    *,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    stamped_at: datetime,
) -> set[Any]:
    """`claim_row` for each of `rows` (one per key, each with the same columns), in one
    statement; answer the keys this call inserted.

    `created_at` and `updated_at` are `stamped_at`. The rows are inserted in key order
    (see the module docstring). A key another transaction is inserting makes this one
    wait for it, then find its row (not inserted here) or insert this one if that
    transaction rolled back. Run it inside the caller's transaction.
    """
    if not rows:
        return set()
    ordered = sorted(rows, key=lambda row: row[key])
    given = list(ordered[0])
    params = [
        value
        for row in ordered
        for value in (*(row[column] for column in given), stamped_at, stamped_at)
    ]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            _insert_sql(model, [*given, "created_at", "updated_at"], len(ordered))
            + f" ON CONFLICT ({quote(key)}) DO NOTHING RETURNING {quote(key)}",
            params,
        )
        return {row[0] for row in cursor.fetchall()}


@dataclass(frozen=True)
class Transitioned:
    """What `transition_each` left of one row: the `columns` asked for, as they are now;
    `changed` if this call moved it to the state; `tombstone` if there was no row and
    this call recorded one."""

    values: Mapping[str, Any]
    changed: bool
    tombstone: bool


def transition_each(
    model: type[Model],
    *,
    pks: Collection[Any],
    status: str,
    tombstone: Mapping[str, Any],
    columns: Sequence[str],
    stamped_at: datetime,
) -> dict[Any, Transitioned]:
    """`transition_once` for each of `pks` (column `id`), in at most three statements:
    what each row is now, by primary key.

    As transition_once does: claim a tombstone in `status` for every key (one INSERT:
    the keys without a row get one), then lock the rows that were there, in key order
    (one SELECT ... FOR UPDATE), and move those not yet in `status` (one UPDATE).
    `updated_at` of what changes is `stamped_at`. Run it inside the caller's transaction
    (the rows stay locked until it ends).
    """
    keys = sorted(set(pks))
    status = str(status)
    tombstones = claim_rows(
        model,
        key="id",
        rows=[{"id": pk, **tombstone, "status": status} for pk in keys],
        stamped_at=stamped_at,
    )
    done: dict[Any, Transitioned] = {}
    for pk in tombstones:
        recorded = {"id": pk, **tombstone, "status": status}
        done[pk] = Transitioned(
            {column: recorded[column] for column in columns}, changed=False, tombstone=True
        )
    found = [pk for pk in keys if pk not in tombstones]
    if not found:
        return done
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, status, {', '.join(quote(column) for column in columns)} FROM {table}"
            " WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            [found],
        )
        rows = {pk: (current, values) for pk, current, *values in cursor.fetchall()}
        moving = [pk for pk, (current, _) in rows.items() if current != status]
        if moving:
            cursor.execute(
                f"UPDATE {table} SET status = %s, updated_at = %s WHERE id = ANY(%s)",
                [status, stamped_at, moving],
            )
    for pk in found:
        if pk not in rows:  # claimed by someone, gone by now: nothing deletes these rows
            raise ObjectDoesNotExist(f"{model.__name__} {pk} vanished while being claimed.")
        current, values = rows[pk]
        row = dict(zip(columns, values, strict=True))
        if "status" in row:
            row["status"] = status
        done[pk] = Transitioned(row, changed=current != status, tombstone=False)
    return done


# ------------------------------------------------------------------ answers


def checked(check: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | ApplicationError:
    """What `check(*args, **kwargs)` answers, or the ApplicationError it raised: in a
    batch, a refusal of that item alone."""
    try:
        return check(*args, **kwargs)
    except ApplicationError as error:
        return error
