"""Batch calls handled as a whole: set-based forms of common.db's writes.

A batch call (CreateOrderBatch, say: one request carrying a wave of sagas' calls) must
answer each item exactly as its single call would. Run item by item, that would cost the
single call's statements and a savepoint per item; a batch handled as a whole decides
its items in Python and writes all its rows in a constant number of statements instead:

- `claim_rows`: `claim_row` for many rows, in one INSERT ... ON CONFLICT DO NOTHING;
- `insert_rows`: one multi-row INSERT of rows no other transaction can write (the lines
  of the orders this transaction has just claimed, say);
- `transition_each`: `transition_once` for many keys, in at most three statements
  (`transition_purchases`: for a batch's purchase ids as its request carried them);
- `compensate_each`: a `common.db.Compensation` (cancel orders, refund payments) for a
  batch's purchase ids, with the cache entries dropped and the log lines;
- `checked`: a check's value, or the refusal it raised, as an item's outcome for
  `common.grpc.servicer.answer_all`;
- `create_once_each`: the create-once batch (an order, a payment per purchase) over a
  service's `CreateOnce` steps: check, read, decide, claim, and decide again what a
  concurrent call claimed first.

Lock order: these take their keys in ascending order, claims before row locks, as the
single calls do. PostgreSQL inserts the rows of a VALUES list, and locks the rows of an
ordered SELECT ... FOR UPDATE, one by one in that order, so concurrent batches over the
same keys wait for each other in one order and cannot deadlock. A caller must not lock
a row (SELECT ... FOR UPDATE) before it claims others: it would hold that lock while it
waits on another transaction's claim, which may itself be waiting for that lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from common.db import Compensation
from common.errors import ApplicationError
from common.ids import parse_purchase_id

P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C")  # a command as a batch request carried it
R = TypeVar("R")  # a row as the batch knows it (read, or decided by an earlier item)
A = TypeVar("A")  # what an item answers when it is not refused


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


def transition_purchases(
    model: type[Model],
    *,
    purchase_ids: Sequence[Any],
    status: str,
    tombstone: Mapping[str, Any],
    columns: Sequence[str],
) -> tuple[list[Any], dict[Any, Transitioned]]:
    """`transition_each` for a batch's purchase ids as its request carried them (a
    cancel, a refund): each id parsed (a bad one is its item's refusal, in the first
    list, by position), the rows keyed by the valid ones moved, stamped now."""
    parsed = [checked(parse_purchase_id, value) for value in purchase_ids]
    done = transition_each(
        model,
        pks=[pk for pk in parsed if not isinstance(pk, ApplicationError)],
        status=status,
        tombstone=tombstone,
        columns=columns,
        stamped_at=timezone.now(),
    )
    return parsed, done


@transaction.atomic
def compensate_each(
    step: Compensation[Any],
    *,
    purchase_ids: Sequence[Any],
    columns: Sequence[str],
    answer: Callable[..., A],
    logger: logging.Logger,
) -> list[A | ApplicationError]:
    """For each purchase id, in request order, what `common.db.compensate_once` would
    have answered, all in one transaction (`transition_purchases`): `answer(pk, **row)`
    with the `columns` of its row as they are now, or the refusal of a bad id. The
    cached copies of the rows it changed or recorded are dropped once it commits."""
    parsed, done = transition_purchases(
        step.model,
        purchase_ids=purchase_ids,
        status=step.status,
        tombstone=step.tombstone,
        columns=columns,
    )
    step.invalidate(*(pk for pk, moved in done.items() if moved.changed or moved.tombstone))
    log_keys(logger, step.moved_many, [pk for pk, moved in done.items() if moved.changed])
    recorded = sorted(str(pk) for pk, moved in done.items() if moved.tombstone)
    if recorded:
        logger.info(step.recorded_many, " ".join(recorded))
    return [
        pk if isinstance(pk, ApplicationError) else answer(pk, **done[pk].values) for pk in parsed
    ]


# ------------------------------------------------------------------ answers


def log_keys(logger: logging.Logger, message: str, keys: Collection[Any]) -> None:
    """Log `message` with how many `keys` and the keys (sorted), if there are any."""
    if keys:
        logger.info(message, len(keys), " ".join(sorted(str(key) for key in keys)))


def checked(check: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | ApplicationError:
    """What `check(*args, **kwargs)` answers, or the ApplicationError it raised: in a
    batch, a refusal of that item alone."""
    try:
        return check(*args, **kwargs)
    except ApplicationError as error:
        return error


# ------------------------------------------------------------------ create once


class Wanted(Protocol):
    """A command that passed its input checks: keyed by the purchase it is for."""

    @property
    def purchase_id(self) -> Any: ...


W = TypeVar("W", bound=Wanted)


@dataclass(frozen=True)
class CreatedOnce(Generic[W, A]):
    """What `create_once_each` did: each item's answer in request order, the creates it
    decided by purchase, and the purchases whose row this call inserted."""

    outcomes: list[A | ApplicationError]
    creating: dict[Any, W]
    claimed: set[Any]


@dataclass(frozen=True)
class CreateOnce(Generic[C, W, R, A]):
    """What a service's create-once batch is made of (its model, its fields, its rules):

    - `check`: the single call's input checks of a command (raise to refuse it);
    - `find`: the rows among these purchase ids, by id (one read, no lock);
    - `rules`: the business rules a new row must pass (raise to refuse it);
    - `record`: the row a create makes, as `find` would read it back;
    - `repeat`: a create's answer when its purchase has a row already (or its refusal);
    - `answer`: what the create that made a row answers;
    - `row`: the columns of the row a create inserts, but `id`, created_at, updated_at.
    """

    model: type[Model]
    check: Callable[[C], W]
    find: Callable[[Iterable[Any]], Mapping[Any, R]]
    rules: Callable[[W], object]
    record: Callable[[W], R]
    repeat: Callable[[R, W], A | ApplicationError]
    answer: Callable[[R], A]
    row: Callable[[W], Mapping[str, Any]]


def _decide(
    steps: CreateOnce[Any, W, R, A],
    items: list[tuple[int, W]],
    recorded: R | None,
    outcomes: dict[int, A | ApplicationError],
) -> W | None:
    """Answer (into `outcomes`, by position) one purchase's creates in request order, as
    single calls one after another would: with no row, the first that passes the rules
    makes it and the rest repeat it. Answers the create to write, if any."""
    creating: W | None = None
    for position, wanted in items:
        if recorded is not None:
            outcomes[position] = steps.repeat(recorded, wanted)
            continue
        refusal = checked(steps.rules, wanted)
        if isinstance(refusal, ApplicationError):
            outcomes[position] = refusal
            continue
        creating = wanted
        recorded = steps.record(wanted)
        outcomes[position] = steps.answer(recorded)
    return creating


def create_once_each(steps: CreateOnce[C, W, R, A], commands: Sequence[C]) -> CreatedOnce[W, A]:
    """A batch of creates that make one row per purchase, answered item by item as the
    single calls one after another would (inside the caller's transaction):

    1. `check` each command (a refusal answers that item alone);
    2. `find` the rows its purchases have already (one read, no lock);
    3. decide, per purchase, its items in request order into the outcomes (by
       position): with no row, the first that passes the `rules` creates it, the rest
       `repeat` it;
    4. claim the rows decided (`claim_rows`: one INSERT ... ON CONFLICT DO NOTHING,
       stamped now, as auto_now_add would, not the transaction's start). A key it did
       not get was claimed by a concurrent call after the read: as the single call does
       after a lost claim, that purchase's items are decided again against the row the
       other call left (one more read, only then).

    The read takes no lock, like the single call's: a create that held row locks while
    it waits on a claim could deadlock with a compensation batch that claims first and
    then locks.
    """
    model = steps.model
    outcomes: dict[int, A | ApplicationError] = {}
    by_purchase: dict[Any, list[tuple[int, W]]] = {}
    for position, command in enumerate(commands):
        wanted = checked(steps.check, command)
        if isinstance(wanted, ApplicationError):
            outcomes[position] = wanted
        else:
            by_purchase.setdefault(wanted.purchase_id, []).append((position, wanted))

    recorded = steps.find(by_purchase)
    creating: dict[Any, W] = {}
    for purchase_id, items in by_purchase.items():
        create = _decide(steps, items, recorded.get(purchase_id), outcomes)
        if create is not None:
            creating[purchase_id] = create

    claimed = claim_rows(
        model,
        key="id",
        rows=[{"id": purchase_id, **steps.row(create)} for purchase_id, create in creating.items()],
        stamped_at=timezone.now(),
    )
    lost = [purchase_id for purchase_id in creating if purchase_id not in claimed]
    if lost:
        found = steps.find(lost)
        for purchase_id in lost:
            if purchase_id not in found:  # nothing deletes these rows
                missing: type[Exception] = getattr(model, "DoesNotExist", ObjectDoesNotExist)
                raise missing(f"{model.__name__} {purchase_id} vanished while being claimed.")
            _decide(steps, by_purchase[purchase_id], found[purchase_id], outcomes)
    return CreatedOnce([outcomes[position] for position in range(len(commands))], creating, claimed)
