"""`manage.py rebuild_product_filter`, in-process against the test database and filter."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import call_command

from common.cache import CuckooFilter
from product_svc.catalog import selectors, services
from product_svc.catalog.conf import config
from product_svc.catalog.models import Product

pytestmark = pytest.mark.django_db


def _products(count: int) -> list[Product]:
    category = services.category_create(name=f"c-{uuid.uuid4().hex[:10]}")
    return [
        services.product_create(category_id=category.id, name=f"p{i}", price=1, inventory=1)
        for i in range(count)
    ]


def _names(products: list[Product]) -> list[str | None]:
    found = [selectors.product_get(product_id=p.id) for p in products]
    return [f["name"] if f else None for f in found]


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("rebuild_product_filter", *args, stdout=out)
    return out.getvalue()


def test_rebuild_puts_every_product_id_back_into_a_filter_that_lost_them() -> None:
    made = _products(3)
    # The filter lost its ids (say, the cache cluster's data): an empty one says "absent".
    cuckoo = CuckooFilter(config().filter_name)
    cuckoo.drop()
    cuckoo.create(1024)
    for product in made:
        selectors.product_cache().invalidate(selectors.product_cache_key(product.id))
    assert _names(made) == [None, None, None]

    output = _run()

    assert "rebuilt with 3 ids" in output
    assert _names(made) == ["p0", "p1", "p2"]


def test_if_missing_rebuilds_only_a_filter_that_does_not_exist() -> None:
    made = _products(2)
    cuckoo = CuckooFilter(config().filter_name)
    cuckoo.drop()

    first = _run("--if-missing")
    second = _run("--if-missing")

    assert "rebuilt with 2 ids" in first
    assert "nothing to do" in second
    info = cuckoo.info()
    assert info is not None and info.count == 2
    assert _names(made) == ["p0", "p1"]


def test_if_missing_also_rebuilds_a_nearly_full_filter_with_room_to_grow() -> None:
    made = _products(2)
    cuckoo = CuckooFilter(config().filter_name)
    cuckoo.drop()
    cuckoo.create(2)
    cuckoo.add_many([str(p.id) for p in made])

    output = _run("--if-missing")

    assert "rebuilt with" in output
    info = cuckoo.info()
    # (ids added shortly before a rebuild are replayed into it, so the count may be higher)
    assert info is not None and info.count >= 2 and info.count < 0.8 * info.capacity
    assert _names(made) == ["p0", "p1"]
