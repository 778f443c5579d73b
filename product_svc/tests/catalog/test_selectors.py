"""Product reads through the two-level cache, in-process, counting database queries.

Penetration and stampede run against the test database with this session's own
cache namespace and filter (conftest.session_cache_names). Invalidation across
processes reads the running service's entries: the write happens in the service
(through the edge), the read here.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg2
import pytest
from django.db import connection

from common.cache import ReadThroughCache
from common.settings import db_password, env
from common.testing import STALENESS_BOUND, edge
from common.topology import INFRA, SERVICES
from product_svc.catalog import selectors, services
from product_svc.catalog.models import Category, Product
from product_svc.config import settings as service_settings

PRODUCT_TABLE = '"catalog_product"'


class ProductQueries:
    """Counts queries on the product table, from any thread that installs `watch()`."""

    def __init__(self, delay: float = 0.0) -> None:
        self.count = 0
        self.delay = delay
        self._lock = threading.Lock()

    def _wrapper(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        if PRODUCT_TABLE in sql:
            with self._lock:
                self.count += 1
            # A slow load widens the window in which concurrent readers pile up.
            time.sleep(self.delay)
        return execute(sql, *args)

    @contextmanager
    def watch(self) -> Iterator[None]:
        with connection.execute_wrapper(self._wrapper):
            yield


def _category() -> Category:
    return services.category_create(name=f"c-{uuid.uuid4().hex[:10]}")


def _product(category: Category, **fields: Any) -> Product:
    body = {"name": "p", "price": 100, "inventory": 5, **fields}
    return services.product_create(category_id=category.id, **body)


# ------------------------------------------------------------------ penetration


@pytest.mark.django_db
def test_reads_of_ids_that_do_not_exist_never_reach_the_product_table() -> None:
    category = _category()
    existing = [_product(category) for _ in range(5)]
    services.product_filter_rebuild()
    missing = range(10**9, 10**9 + 1000)
    queries = ProductQueries()

    with queries.watch():
        answers = [selectors.product_get(product_id=i) for i in missing]

    assert answers == [None] * 1000
    assert queries.count == 0
    # The counter does see the product table: a cold existing product costs one query.
    with queries.watch():
        found = selectors.product_get(product_id=existing[0].id)
    assert found is not None and found["id"] == existing[0].id
    assert queries.count == 1


@pytest.mark.django_db
def test_ids_no_bigint_can_hold_are_refused_before_the_cache() -> None:
    queries = ProductQueries()

    with queries.watch():
        answers = [selectors.product_get(product_id=i) for i in (0, -1, 2**63, 10**30)]

    assert answers == [None] * 4
    assert queries.count == 0


# -------------------------------------------------------------------- stampede


@pytest.mark.django_db(transaction=True)
def test_50_concurrent_readers_of_a_cold_product_load_it_once() -> None:
    product = _product(_category(), name="cold")
    selectors.product_cache().invalidate(selectors.product_cache_key(product.id))
    queries = ProductQueries(delay=0.3)
    barrier = threading.Barrier(50)

    def read(_: int) -> dict[str, Any] | None:
        try:
            barrier.wait()
            with queries.watch():
                return selectors.product_get(product_id=product.id)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(read, range(50)))

    assert queries.count == 1
    assert [a["name"] if a else None for a in answers] == ["cold"] * 50


@pytest.mark.django_db
def test_get_many_loads_only_the_cold_products_in_one_query() -> None:
    category = _category()
    warm = [_product(category) for _ in range(2)]
    cold = [_product(category) for _ in range(3)]
    for product in warm:
        selectors.product_get(product_id=product.id)
    queries = ProductQueries()
    wanted = [p.id for p in warm + cold] + [10**9 + 1, 10**9 + 2]

    with queries.watch():
        found = selectors.product_get_many(product_ids=wanted)

    assert sorted(found) == sorted(p.id for p in warm + cold)
    assert queries.count == 1


# ---------------------------------------------------------------- availability


@pytest.mark.django_db
def test_availability_judges_each_line_against_all_the_request_wants_of_its_product() -> None:
    category = _category()
    whey = _product(category, name="Whey 1kg", inventory=5)
    casein = _product(category, name="Casein 2kg", inventory=5)
    unknown = 10**9 + 3

    lines = selectors.product_availability(
        items=[(whey.id, 3), (unknown, 1), (casein.id, 5), (whey.id, 3)]
    )

    assert [(li.product_id, li.enough) for li in lines] == [
        (whey.id, False),  # 3 + 3 of 5 in stock: neither line is enough
        (unknown, False),
        (casein.id, True),
        (whey.id, False),
    ]
    assert lines[1].product is None
    assert lines[0].product is not None and lines[0].product["name"] == "Whey 1kg"
    assert lines[2].product is not None and lines[2].product["inventory"] == 5


# ---------------------------------------------------------------- invalidation


def _live_product_loader(product_id: int) -> Callable[[], dict[str, Any] | None]:
    """A loader reading the running service's database (not the test database)."""
    svc = SERVICES["product"]

    def load() -> dict[str, Any] | None:
        with (
            psycopg2.connect(
                dbname=env("DB_NAME", svc.database),
                user=env("DB_USER", svc.db_role),
                password=db_password("product"),
                host=env("DB_HOST", INFRA.pg_host),
                port=env("DB_PORT", str(INFRA.pg_port)),
                options="-c timezone=UTC",
            ) as conn,
            conn.cursor() as cursor,
        ):
            columns = [
                "id", "category_id", "name", "description", "brand_name",
                "price", "inventory", "created_at", "updated_at",
            ]  # fmt: skip
            cursor.execute(
                f"SELECT {', '.join(columns)} FROM catalog_product WHERE id = %s", [product_id]
            )
            row = cursor.fetchone()
        if row is None:
            return None
        return selectors.product_to_dict(Product(**dict(zip(columns, row, strict=True))))

    return load


@pytest.mark.live
def test_an_update_in_the_service_is_read_here_within_a_second(
    staff: str, make_product: Callable[..., dict[str, Any]]
) -> None:
    # The service's own cache and filter, as another replica of it would use them.
    live = vars(service_settings)
    reader = ReadThroughCache(
        live["PRODUCT_CACHE_NAMESPACE"], filter_name=live["PRODUCT_FILTER_NAME"]
    )
    product = make_product(name="before")
    key = selectors.product_cache_key(product["id"])
    load = _live_product_loader(product["id"])
    assert (reader.get(key, load) or {})["name"] == "before"
    assert (reader.get(key, load) or {})["name"] == "before"  # now in this process too

    updated = edge(
        "PATCH", f"/api/v1/products/{product['id']}", token=staff, json={"name": "after"}
    )
    assert updated.status_code == 200, updated.text
    written = time.monotonic()

    name = None
    while time.monotonic() - written < STALENESS_BOUND:
        name = (reader.get(key, load) or {}).get("name")
        if name == "after":
            break
        time.sleep(0.01)
    if name != "after":
        name = (reader.get(key, load) or {}).get("name")
    assert name == "after"
