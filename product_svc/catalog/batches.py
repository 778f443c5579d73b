"""The saga's inventory step for a wave of purchases, in a constant number of statements.

`inventory_reserve_batch` and `inventory_release_batch` answer, item by item, exactly
what `services.inventory_reserve` / `services.inventory_release` would have answered had
the items been applied one by one in purchase-id order (repeats of a purchase in request
order), with the same effect on stock, in one transaction. The single calls cost about
8 statements per item; a batch of any size costs at most 6:

1. validate every item in Python (the single call's INVALID_INPUT rules);
2. claim the reservation rows of all its purchase ids in one INSERT ... ON CONFLICT DO
   NOTHING: like a single call's claim, it waits for a transaction still inserting (or
   changing) the same id, then sees that one's row;
3. read and lock the rows that already existed, with their lines (one SELECT);
4. lock the products it may change, by id, reading their stock (one SELECT);
5. decide each item in Python, in purchase-id order, against the stock in memory;
6. write the outcome, one statement each and only when there is something to write.

Lock order, as the single calls take theirs: reservation rows first (claims, then the
existing rows, each by purchase id), then products by id. Nothing waits for a
reservation row while holding a product, so two batches, or a batch and a single call,
cannot wait for each other in opposite orders; and the hot product rows stay locked
only for the few statements of step 6. (Products first would not work for releases:
a release learns its products from the reservation row, which a reserve may commit
after the release locked the products it knew of.)
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction

from common.errors import ApplicationError
from common.ids import MAX_INT64, parse_purchase_id
from product_svc.catalog.models import Product, Reservation, ReservationLine
from product_svc.catalog.services import (
    ReleaseResult,
    ReservedLine,
    ReserveResult,
    insufficient_stock,
    merge_lines,
    product_cache_invalidate_on_commit,
    reserve_repeat,
    unknown_product,
)

RESERVED = Reservation.State.RESERVED.value
RELEASED = Reservation.State.RELEASED.value


@dataclass(frozen=True)
class ReserveCommand:
    """One reserve of a batch as its request carried it (the batch validates it)."""

    purchase_id: Any
    items: Sequence[tuple[int, int]]


@dataclass(frozen=True)
class _Recorded:
    """A reservation row as the batch knows it: read, or reserved by an earlier item."""

    state: str
    lines: tuple[ReservedLine, ...]


def inventory_reserve_batch(
    *, commands: Sequence[ReserveCommand]
) -> list[ReserveResult | ApplicationError]:
    """For each command, in request order, what `inventory_reserve` would have answered:
    its result, or the ApplicationError it would have raised. One transaction.

    A refused item leaves no trace, as a refused single call does: the claims no item
    kept are deleted before the batch commits.
    """
    outcomes: dict[int, ReserveResult | ApplicationError] = {}
    valid: list[tuple[int, uuid.UUID, tuple[ReservedLine, ...]]] = []
    for position, command in enumerate(commands):
        try:
            # The single call's order: a bad purchase id is reported before bad lines.
            purchase_id = parse_purchase_id(command.purchase_id)
            valid.append((position, purchase_id, merge_lines(command.items)))
        except ApplicationError as error:
            outcomes[position] = error
    valid.sort(key=lambda item: item[1])  # stable: repeats of a purchase as they came
    if not valid:
        return [outcomes[position] for position in range(len(commands))]

    with transaction.atomic():
        claimed = _claim(_distinct(purchase_id for _, purchase_id, _ in valid), RESERVED)
        recorded = _read_and_lock(
            _distinct(purchase_id for _, purchase_id, _ in valid if purchase_id not in claimed)
        )
        # Only a claimed (new) purchase takes stock; a repeat reads its row and is done.
        stock = _lock_products(
            line.product_id
            for _, purchase_id, lines in valid
            if purchase_id in claimed
            for line in lines
        )

        reserved: dict[uuid.UUID, tuple[ReservedLine, ...]] = {}
        taken: dict[int, int] = {}
        for position, purchase_id, lines in valid:
            try:
                result = _reserve_one(purchase_id, lines, recorded, stock)
            except ApplicationError as error:
                outcomes[position] = error
                continue
            outcomes[position] = result
            if result.changed:  # a new reservation, not a repeat
                reserved[purchase_id] = lines
                for line in lines:
                    taken[line.product_id] = taken.get(line.product_id, 0) + line.quantity

        _delete_reservations(claimed - reserved.keys())
        _insert_lines(reserved)
        _add_stock({product_id: -quantity for product_id, quantity in taken.items()})
        product_cache_invalidate_on_commit(product_ids=taken)
    return [outcomes[position] for position in range(len(commands))]


def _reserve_one(
    purchase_id: uuid.UUID,
    lines: tuple[ReservedLine, ...],
    recorded: dict[uuid.UUID, _Recorded],
    stock: dict[int, int],
) -> ReserveResult:
    """One reserve against what the batch knows so far: takes from `stock` and records
    the reservation in `recorded` when it succeeds; raises its refusal otherwise."""
    known = recorded.get(purchase_id)
    if known is not None:
        return reserve_repeat(
            purchase_id=purchase_id, state=known.state, reserved=known.lines, lines=lines
        )
    for line in lines:  # by product id: the first line that cannot be taken decides
        available = stock.get(line.product_id)
        if available is None:
            raise unknown_product(line.product_id)
        if available < line.quantity:
            raise insufficient_stock(line, available)
    for line in lines:
        stock[line.product_id] -= line.quantity
    recorded[purchase_id] = _Recorded(RESERVED, lines)
    return ReserveResult(purchase_id, lines, changed=True)


def inventory_release_batch(
    *, purchase_ids: Sequence[Any]
) -> list[ReleaseResult | ApplicationError]:
    """For each purchase id, in request order, what `inventory_release` would have
    answered: its result, or the ApplicationError it would have raised. One transaction.
    """
    outcomes: dict[int, ReleaseResult | ApplicationError] = {}
    valid: list[tuple[int, uuid.UUID]] = []
    for position, raw_id in enumerate(purchase_ids):
        try:
            valid.append((position, parse_purchase_id(raw_id)))
        except ApplicationError as error:
            outcomes[position] = error
    valid.sort(key=lambda item: item[1])
    if not valid:
        return [outcomes[position] for position in range(len(purchase_ids))]

    with transaction.atomic():
        distinct_ids = _distinct(purchase_id for _, purchase_id in valid)
        # A purchase never reserved gets its RELEASED tombstone from the claim itself.
        tombstones = _claim(distinct_ids, RELEASED)
        recorded = _read_and_lock([i for i in distinct_ids if i not in tombstones])
        recorded.update((i, _Recorded(RELEASED, ())) for i in tombstones)

        released: list[uuid.UUID] = []
        given_back: dict[int, int] = {}
        for position, purchase_id in valid:
            known = recorded[purchase_id]
            if known.state == RELEASED:
                outcomes[position] = ReleaseResult(
                    purchase_id, released=bool(known.lines), changed=False
                )
                continue
            for line in known.lines:
                given_back[line.product_id] = given_back.get(line.product_id, 0) + line.quantity
            recorded[purchase_id] = _Recorded(RELEASED, known.lines)
            released.append(purchase_id)
            outcomes[position] = ReleaseResult(purchase_id, released=True, changed=True)

        _mark_released(released)
        _lock_products(given_back)  # by id, before the UPDATE takes them in its own order
        _add_stock(given_back)
        product_cache_invalidate_on_commit(product_ids=given_back)
    return [outcomes[position] for position in range(len(purchase_ids))]


def _distinct(purchase_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """Sorted, each once: the order in which every batch takes reservation rows."""
    return sorted(set(purchase_ids))


# ------------------------------------------------------- one statement each
# Raw SQL where the ORM would cost a statement per row; array parameters keep the
# statement the same whatever the batch size.


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _claim(purchase_ids: Sequence[uuid.UUID], state: str) -> set[uuid.UUID]:
    """Insert a reservation row in `state` for each purchase id that has none, in the
    order given; answers those inserted. Waits, as `services._claim_reservation` does,
    for a transaction still writing one of these ids, then sees its committed row."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(Reservation)} (purchase_id, state, created_at, updated_at)"
            " SELECT claim.purchase_id, %s, now(), now()"
            " FROM unnest(%s::uuid[]) WITH ORDINALITY AS claim(purchase_id, n) ORDER BY n"
            " ON CONFLICT (purchase_id) DO NOTHING RETURNING purchase_id",
            [state, list(purchase_ids)],
        )
        return {row[0] for row in cursor.fetchall()}


def _read_and_lock(purchase_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, _Recorded]:
    """The reservation rows of these purchases with their lines (by product id), locked
    FOR UPDATE in purchase-id order, as a single call locks its one row."""
    if not purchase_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.purchase_id, r.state, l.product_id, l.quantity"
            f" FROM {_table(Reservation)} r"
            f" LEFT JOIN {_table(ReservationLine)} l ON l.reservation_id = r.purchase_id"
            " WHERE r.purchase_id = ANY(%s::uuid[])"
            " ORDER BY r.purchase_id, l.product_id FOR UPDATE OF r",
            [list(purchase_ids)],
        )
        rows = cursor.fetchall()
    states: dict[uuid.UUID, str] = {}
    lines: dict[uuid.UUID, list[ReservedLine]] = {}
    for purchase_id, state, product_id, quantity in rows:
        states[purchase_id] = state
        found = lines.setdefault(purchase_id, [])
        if product_id is not None:
            found.append(ReservedLine(product_id, quantity))
    missing = set(purchase_ids) - states.keys()
    if missing:  # the claim found them, yet they are gone: deleted by hand meanwhile
        raise Reservation.DoesNotExist(f"Reservations gone: {sorted(map(str, missing))}")
    return {i: _Recorded(states[i], tuple(lines[i])) for i in states}


def _lock_products(product_ids: Iterable[int]) -> dict[int, int]:
    """Lock these products (those that exist) in ascending id order until the batch
    commits, and answer their stock by id. (FOR NO KEY UPDATE: the lock the UPDATE of
    their stock takes anyway; an UPDATE of many rows takes them in its join's order.)"""
    ids = sorted({i for i in product_ids if 1 <= i <= MAX_INT64})
    if not ids:
        return {}
    return dict(
        Product.objects.select_for_update(no_key=True)
        .filter(id__in=ids)
        .order_by("id")
        .values_list("id", "inventory")
    )


def _delete_reservations(purchase_ids: Collection[uuid.UUID]) -> None:
    """Delete this batch's claims of purchases whose every reserve was refused."""
    if not purchase_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_table(Reservation)} WHERE purchase_id = ANY(%s::uuid[])",
            [sorted(purchase_ids)],
        )


def _insert_lines(reserved: dict[uuid.UUID, tuple[ReservedLine, ...]]) -> None:
    rows = [
        (purchase_id, line.product_id, line.quantity)
        for purchase_id, lines in reserved.items()
        for line in lines
    ]
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(ReservationLine)} (reservation_id, product_id, quantity)"
            " SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::bigint[])",
            [[row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows]],
        )


def _mark_released(purchase_ids: Sequence[uuid.UUID]) -> None:
    if not purchase_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(Reservation)} SET state = %s, updated_at = now()"
            " WHERE purchase_id = ANY(%s::uuid[])",
            [RELEASED, list(purchase_ids)],
        )


def _add_stock(deltas: dict[int, int]) -> None:
    """Add each delta to its product's stock (negative: taken), all at once. The products
    are locked already; the CHECK (inventory >= 0) stays the last guard."""
    changes = sorted((product_id, delta) for product_id, delta in deltas.items() if delta)
    if not changes:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(Product)} p"
            " SET inventory = p.inventory + d.delta, updated_at = now()"
            " FROM unnest(%s::bigint[], %s::bigint[]) AS d(id, delta) WHERE p.id = d.id",
            [[product_id for product_id, _ in changes], [delta for _, delta in changes]],
        )
