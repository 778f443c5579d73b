"""Reads of the catalog.

One product is read through the shared two-level cache (common.cache): a cuckoo
filter of product ids turns away ids that never existed before any lookup, a
stampede lock lets one reader load a cold product while the others wait, and a
write invalidates both levels, in every process of the service (services.py).
Lists are read from the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from common.cache import ReadThroughCache, process_cache
from common.ids import MAX_INT64
from common.serializers import api_datetime
from product_svc.catalog.conf import config
from product_svc.catalog.models import Category, Product, Reservation


def product_cache() -> ReadThroughCache:
    """The product cache of this process, named by settings (tests use their own names).

    Its invalidations are broadcast: a reservation in the gRPC process drops the entry
    from the HTTP workers' local levels too, before the saga can finish (read-your-writes
    for stock, docs/adr/0004-cache-layer.md)."""
    conf = config()
    return process_cache(conf.cache_namespace, conf.filter_name, broadcast=True)


def product_cache_key(product_id: int) -> str:
    """The cache key (and filter item) of a product: its id as text."""
    return str(product_id)


def product_to_dict(product: Product) -> dict[str, Any]:
    """A product as cached and as answered by the API: plain JSON values."""
    return {
        "id": product.id,
        "category_id": product.category_id,
        "name": product.name,
        "description": product.description,
        "brand_name": product.brand_name,
        "price": product.price,
        "inventory": product.inventory,
        "created_at": api_datetime(product.created_at),
        "updated_at": api_datetime(product.updated_at),
    }


def _valid_id(value: int) -> bool:
    """Whether a bigint primary key can hold `value`: larger ids cannot exist."""
    return 1 <= value <= MAX_INT64


def product_load(product_id: int) -> dict[str, Any] | None:
    """One product straight from the database (the cache's loader)."""
    product = Product.objects.filter(id=product_id).first()
    return product_to_dict(product) if product is not None else None


def product_load_many(product_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Products straight from the database in one query, by id; absent ids are left out."""
    ids = [i for i in product_ids if _valid_id(i)]
    return {p.id: product_to_dict(p) for p in Product.objects.filter(id__in=ids)}


def product_get(*, product_id: int) -> dict[str, Any] | None:
    """One product (as product_to_dict) through the cache, or None if there is none."""
    if not _valid_id(product_id):
        return None
    return product_cache().get(product_cache_key(product_id), lambda: product_load(product_id))


def product_get_many(*, product_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Products by id through the cache (one query for the cold ones); absent ids left out."""
    wanted = list(dict.fromkeys(i for i in product_ids if _valid_id(i)))
    if not wanted:
        return {}

    def load_many(ids: list[int | str]) -> Mapping[int | str, dict[str, Any]]:
        return {k: v for k, v in product_load_many(int(i) for i in ids).items()}

    found = product_cache().get_many(wanted, load_many)
    return {int(k): v for k, v in found.items()}


@dataclass(frozen=True)
class ProductAvailability:
    """One requested line as CheckProducts answers it: the product (as product_to_dict;
    None when there is none) and whether its stock covers the request."""

    product_id: int
    product: dict[str, Any] | None
    enough: bool


def product_availability(*, items: Sequence[tuple[int, int]]) -> list[ProductAvailability]:
    """Each (product_id, quantity) line, in order, read through the cache. A line is
    judged against everything the request wants of its product, so two lines of one
    product are `enough` only when the stock covers both."""
    wanted: dict[int, int] = {}
    for product_id, quantity in items:
        wanted[product_id] = wanted.get(product_id, 0) + quantity
    found = product_get_many(product_ids=wanted)
    return [
        ProductAvailability(
            product_id=product_id,
            product=found.get(product_id),
            enough=product_id in found and found[product_id]["inventory"] >= wanted[product_id],
        )
        for product_id, _quantity in items
    ]


def product_list(*, category_id: int | None = None) -> QuerySet[Product]:
    """Products by id, optionally of one category (for pagination)."""
    products = Product.objects.order_by("id")
    if category_id is not None:
        products = products.filter(category_id=category_id)
    return products


def category_get(*, category_id: int) -> Category | None:
    if not _valid_id(category_id):
        return None
    return Category.objects.filter(id=category_id).first()


def category_list() -> QuerySet[Category]:
    return Category.objects.order_by("id")


def product_ids() -> Iterable[int]:
    """Every product id, streamed (for rebuilding the cuckoo filter)."""
    return Product.objects.order_by("id").values_list("id", flat=True).iterator(chunk_size=5000)


def reservation_get_many(*, purchase_ids: Iterable[uuid.UUID]) -> list[Reservation]:
    """The reservations of these purchases with their lines, straight from the database
    (the consistency audit wants what is, not what a cache remembers); absent ones left out."""
    return list(
        Reservation.objects.filter(purchase_id__in=list(purchase_ids))
        .order_by("purchase_id")
        .prefetch_related("lines")
    )
