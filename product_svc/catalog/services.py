"""Writes of the catalog: categories, products, and the saga's inventory step.

Every write that changes what a product read answers invalidates the product's
cached copy after its transaction commits (both cache levels, and by a broadcast the
local level of every other process of the service). A new product's id goes into the cuckoo filter
before its transaction commits, so no reader can learn the id before the filter
does (docs/adr/0005-inventory-reservations.md).

Inventory reservations are idempotent on the purchase id: the Reservation row is
claimed with INSERT ... ON CONFLICT DO NOTHING, so a repeat (or a duplicate racing
with the first) finds the first one's row and answers its result instead of
taking stock again. Every inventory write, single or batch (catalog.batches), takes
its reservation rows first (by purchase id), then its products (by id), so no two of
them wait for each other in opposite orders.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Now

from common.cache import CacheUnavailable, LockNotAcquired, cuckoo
from common.db import claim_row
from common.errors import ApplicationError, ErrorCode
from common.ids import MAX_INT64
from product_svc.catalog import selectors
from product_svc.catalog.conf import config
from product_svc.catalog.models import Category, Product, Reservation, ReservationLine

logger = logging.getLogger(__name__)

MAX_RESERVATION_LINES = 100
MAX_QUANTITY = 2**31 - 1


# ---------------------------------------------------------------- cache upkeep


def _product_cache_invalidate(product_ids: Iterable[int]) -> None:
    # One call, so one broadcast message for the whole batch of products.
    selectors.product_cache().invalidate_many(
        selectors.product_cache_key(product_id) for product_id in product_ids
    )


def product_cache_invalidate_on_commit(*, product_ids: Iterable[int]) -> None:
    """After the current transaction commits, drop the cached copies of these products
    (both levels, in every process: one broadcast message). Outside a transaction: at
    once. The callback runs before the call that committed returns, so a saga step
    hears success only after the invalidation went out."""
    ids = sorted(set(product_ids))
    if ids:
        transaction.on_commit(lambda: _product_cache_invalidate(ids))


def product_filter_add(*, product_id: int) -> None:
    """Put a new product's id into the cuckoo filter. Once per product: the filter keeps
    a copy per add, so adding on every write would fill it with duplicates."""
    selectors.product_cache().filter_add(selectors.product_cache_key(product_id))


def product_filter_rebuild() -> int:
    """Rebuild the product-id cuckoo filter from the database; answers how many ids it holds."""
    info = cuckoo.rebuild(config().filter_name, list(selectors.product_ids()))
    return info.count


FILTER_REBUILD_LOAD = 0.8
"""A filter fuller than this is rebuilt at startup, with room to grow (twice the ids)."""


def product_filter_ensure() -> int | None:
    """Rebuild the filter if it is missing, saturated or nearly full; None if it was fine.

    Runs when a service process starts. Without a filter every read of an unknown id
    would reach the database (the cache fails open), and ids added to a missing filter
    are dropped, so a filter lost with the cache cluster's data must be rebuilt before
    it can be trusted again. A cluster that cannot answer leaves the filter as it is:
    reads still work (slower), and the next start tries again.
    """
    name = config().filter_name
    try:
        info = cuckoo.CuckooFilter(name).info()
        if (
            info is not None
            and not info.saturated
            and info.count < info.capacity * FILTER_REBUILD_LOAD
        ):
            return None
        logger.warning("product filter %s is %s: rebuilding it", name, _filter_state(info))
        return product_filter_rebuild()
    except (CacheUnavailable, LockNotAcquired) as exc:
        logger.warning("product filter %s not checked at startup: %s", name, exc)
        return None


def _filter_state(info: cuckoo.FilterInfo | None) -> str:
    if info is None:
        return "missing"
    if info.saturated:
        return "saturated"
    return f"nearly full ({info.count} of {info.capacity})"


# ------------------------------------------------------------------ categories


def _unique_name_conflict(name: str) -> ApplicationError:
    return ApplicationError(
        ErrorCode.CONFLICT,
        f"A category named {name!r} already exists.",
        {"fields": {"name": ["A category with this name already exists."]}},
    )


def category_create(*, name: str, description: str = "") -> Category:
    """Create a category; its name is unique (409 otherwise)."""
    try:
        with transaction.atomic():
            return Category.objects.create(name=name, description=description)
    except IntegrityError:
        raise _unique_name_conflict(name) from None


def category_update(*, category_id: int, name: str, description: str = "") -> Category:
    """Replace a category's name and description."""
    try:
        with transaction.atomic():
            category = None
            if 1 <= category_id <= MAX_INT64:
                category = Category.objects.select_for_update().filter(id=category_id).first()
            if category is None:
                raise ApplicationError(ErrorCode.NOT_FOUND, f"No category {category_id}.")
            category.name = name
            category.description = description
            category.save(update_fields=["name", "description", "updated_at"])
            return category
    except IntegrityError:
        raise _unique_name_conflict(name) from None


# -------------------------------------------------------------------- products


def _unknown_category(category_id: int) -> ApplicationError:
    return ApplicationError(
        ErrorCode.INVALID_INPUT,
        f"No category {category_id}.",
        {"fields": {"category_id": [f"No category {category_id}."]}},
    )


@transaction.atomic
def product_create(
    *,
    category_id: int,
    name: str,
    description: str = "",
    brand_name: str = "",
    price: int,
    inventory: int,
) -> Product:
    """Create a product in an existing category; it is readable as soon as this returns."""
    if selectors.category_get(category_id=category_id) is None:
        raise _unknown_category(category_id)
    product = Product.objects.create(
        category_id=category_id,
        name=name,
        description=description,
        brand_name=brand_name,
        price=price,
        inventory=inventory,
    )
    # Into the filter before commit: once anyone can learn the id, the filter knows it.
    # (Were the transaction to roll back, the id would only be a false positive.)
    product_filter_add(product_id=product.id)
    # After commit, drop a "no such product" a reader may have cached meanwhile.
    product_cache_invalidate_on_commit(product_ids=[product.id])
    return product


PRODUCT_FIELDS = ("category_id", "name", "description", "brand_name", "price", "inventory")


@transaction.atomic
def product_update(*, product_id: int, **fields: Any) -> Product:
    """Change some of a product's fields (PRODUCT_FIELDS); `inventory` sets the stock."""
    unknown = set(fields) - set(PRODUCT_FIELDS)
    if unknown:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"Unknown fields: {sorted(unknown)}.")
    product = None
    if 1 <= product_id <= MAX_INT64:
        product = Product.objects.select_for_update().filter(id=product_id).first()
    if product is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, f"No product {product_id}.")
    category_id = fields.get("category_id")
    if category_id is not None and selectors.category_get(category_id=category_id) is None:
        raise _unknown_category(category_id)
    for field, value in fields.items():
        setattr(product, field, value)
    product.save()
    product_cache_invalidate_on_commit(product_ids=[product.id])
    return product


# ------------------------------------------------------------------- inventory


@dataclass(frozen=True)
class ReservedLine:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class ReserveResult:
    """What is reserved for a purchase; `changed` is False when a repeat found it done."""

    purchase_id: uuid.UUID
    lines: tuple[ReservedLine, ...]
    changed: bool


@dataclass(frozen=True)
class ReleaseResult:
    """`released`: stock reserved for the purchase was (now or before) given back.
    False when nothing was ever reserved for it. `changed`: this call gave it back."""

    purchase_id: uuid.UUID
    released: bool
    changed: bool


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID_INPUT, message)


def merge_lines(items: Iterable[tuple[int, int]]) -> tuple[ReservedLine, ...]:
    """Validate the requested lines and merge repeats of a product, sorted by product id.

    The sort is the lock order: every transaction that touches several products
    updates them by ascending id, so two of them cannot deadlock.
    """
    totals: dict[int, int] = {}
    for count, (product_id, quantity) in enumerate(items, start=1):
        if count > MAX_RESERVATION_LINES:
            raise _invalid(f"At most {MAX_RESERVATION_LINES} lines per reservation.")
        if not 1 <= product_id <= MAX_INT64:
            raise _invalid(f"product_id must be a positive id, not {product_id}.")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise _invalid(f"quantity must be between 1 and {MAX_QUANTITY}, not {quantity}.")
        totals[product_id] = totals.get(product_id, 0) + quantity
        if totals[product_id] > MAX_QUANTITY:
            raise _invalid(f"quantity of product {product_id} exceeds {MAX_QUANTITY}.")
    if not totals:
        raise _invalid("A reservation needs at least one line.")
    return tuple(ReservedLine(p, q) for p, q in sorted(totals.items()))


def _claim_reservation(purchase_id: uuid.UUID, state: Reservation.State) -> bool:
    """Insert the purchase's reservation row in `state` unless one exists; True if inserted.

    If another transaction has inserted the same purchase id and not yet finished,
    PostgreSQL makes this statement wait for it: a duplicate racing with the first
    then sees the first one's committed row (or inserts its own if the first rolled
    back), never a second reservation.
    """
    return claim_row(
        Reservation, key="purchase_id", values={"purchase_id": purchase_id, "state": state.value}
    )


def _lines_of(reservation: Reservation) -> tuple[ReservedLine, ...]:
    return tuple(
        ReservedLine(line.product_id, line.quantity)
        for line in reservation.lines.order_by("product_id")
    )


def reserve_repeat(
    *,
    purchase_id: uuid.UUID,
    state: str,
    reserved: tuple[ReservedLine, ...],
    lines: tuple[ReservedLine, ...],
) -> ReserveResult:
    """A reserve of `lines` for a purchase whose row already exists (in `state`, with the
    `reserved` lines): the first result unchanged, or its refusal (raised)."""
    if state == Reservation.State.RELEASED:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION,
            f"Purchase {purchase_id} was released; a reserve after it does nothing.",
            {"purchase_id": str(purchase_id)},
        )
    if reserved != lines:
        raise ApplicationError(
            ErrorCode.CONFLICT,
            f"Purchase {purchase_id} already reserved other lines.",
            {
                "purchase_id": str(purchase_id),
                "reserved": [[line.product_id, line.quantity] for line in reserved],
            },
        )
    return ReserveResult(purchase_id, reserved, changed=False)


def unknown_product(product_id: int) -> ApplicationError:
    """The refusal of a reserve naming a product that does not exist."""
    return ApplicationError(
        ErrorCode.NOT_FOUND, f"No product {product_id}.", {"product_id": product_id}
    )


def insufficient_stock(line: ReservedLine, available: int) -> ApplicationError:
    """The refusal of a reserve wanting more of a product than `available`."""
    return ApplicationError(
        ErrorCode.INSUFFICIENT_STOCK,
        f"Product {line.product_id} has {available} in stock, {line.quantity} wanted.",
        {"product_id": line.product_id, "available": available, "wanted": line.quantity},
    )


def inventory_reserve(*, purchase_id: uuid.UUID, items: Sequence[tuple[int, int]]) -> ReserveResult:
    """Take every line (product_id, quantity) from stock for a purchase, or none.

    One conditional UPDATE per line (`inventory >= quantity`), in one transaction,
    in product-id order. Idempotent on purchase_id: a repeat answers the first
    result without touching stock; a repeat with other lines is a CONFLICT; after
    the purchase was released (or a release came first) it is FAILED_PRECONDITION
    and nothing changes. Unknown product: NOT_FOUND. Not enough stock:
    INSUFFICIENT_STOCK. Neither leaves a trace, so a retry decides afresh.
    (The batch form, for a wave of purchases: catalog.batches.)
    """
    lines = merge_lines(items)
    with transaction.atomic():
        if not _claim_reservation(purchase_id, Reservation.State.RESERVED):
            reservation = Reservation.objects.select_for_update().get(purchase_id=purchase_id)
            return reserve_repeat(
                purchase_id=purchase_id,
                state=reservation.state,
                reserved=_lines_of(reservation),
                lines=lines,
            )

        for line in lines:
            taken = Product.objects.filter(id=line.product_id, inventory__gte=line.quantity).update(
                inventory=F("inventory") - line.quantity, updated_at=Now()
            )
            if taken:
                continue
            available = (
                Product.objects.filter(id=line.product_id)
                .values_list("inventory", flat=True)
                .first()
            )
            if available is None:
                raise unknown_product(line.product_id)
            raise insufficient_stock(line, available)
        ReservationLine.objects.bulk_create(
            ReservationLine(
                reservation_id=purchase_id, product_id=line.product_id, quantity=line.quantity
            )
            for line in lines
        )
        product_cache_invalidate_on_commit(product_ids=(line.product_id for line in lines))
    return ReserveResult(purchase_id, lines, changed=True)


def inventory_release(*, purchase_id: uuid.UUID) -> ReleaseResult:
    """Give back exactly what was reserved for a purchase, once.

    Nothing reserved: success with released=False, and a RELEASED tombstone stays
    so that a reserve arriving later does nothing. A repeat answers the first result.
    """
    with transaction.atomic():
        if _claim_reservation(purchase_id, Reservation.State.RELEASED):
            logger.info("release of %s before any reserve: tombstone recorded", purchase_id)
            return ReleaseResult(purchase_id, released=False, changed=False)
        reservation = Reservation.objects.select_for_update().get(purchase_id=purchase_id)
        lines = _lines_of(reservation)
        if reservation.state == Reservation.State.RELEASED:
            return ReleaseResult(purchase_id, released=bool(lines), changed=False)
        for line in lines:  # by product id: the same lock order as a reserve
            Product.objects.filter(id=line.product_id).update(
                inventory=F("inventory") + line.quantity, updated_at=Now()
            )
        reservation.state = Reservation.State.RELEASED
        reservation.save(update_fields=["state", "updated_at"])
        product_cache_invalidate_on_commit(product_ids=(line.product_id for line in lines))
    return ReleaseResult(purchase_id, released=True, changed=True)
