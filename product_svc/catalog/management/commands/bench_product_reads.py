"""`manage.py bench_product_reads`: latency of one product read, cold and cached.

Measures in this process, against the service's database and cache cluster:
- database: the loader alone (one SELECT by primary key);
- cold: a read through the cache right after invalidating the product (Redis miss,
  filter check, lock, SELECT, store);
- redis: a hit in the cluster level (a cache whose local level is off);
- local: a hit in the in-process level;
and reads per second of one thread with a warm cache. Reads only; it invalidates the
product's cache entry (a miss for the next reader, nothing more).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.cache import LocalCache, ReadThroughCache
from product_svc.catalog import selectors
from product_svc.catalog.conf import config
from product_svc.catalog.models import Product


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1e6, cuts[98] * 1e6


def _time(
    call: Callable[[], Any], runs: int, before: Callable[[], Any] | None = None
) -> list[float]:
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


class _NoLocalLevel(LocalCache):
    """A local level that never holds anything, so every read asks Redis."""

    def get(self, key: str) -> bytes | None:
        return None

    def put(self, key: str, payload: bytes, *, ttl: float, epoch: int | None = None) -> bool:
        return False

    def __bool__(self) -> bool:  # empty, yet to be used (ReadThroughCache tests `local or`)
        return True


class Command(BaseCommand):
    help = "Measure cold and cached read latency of one product, and warm reads per second."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--product-id", type=int, default=None, help="default: the first")
        parser.add_argument("--runs", type=int, default=2000, help="samples per measurement")
        parser.add_argument("--seconds", type=float, default=3.0, help="length of the rps run")

    def handle(self, *args: Any, **options: Any) -> None:
        product_id = (
            options["product_id"]
            or Product.objects.order_by("id").values_list("id", flat=True).first()
        )
        if product_id is None or selectors.product_load(product_id) is None:
            raise CommandError("no such product: create one or pass --product-id")
        runs = options["runs"]
        key = selectors.product_cache_key(product_id)
        cache = selectors.product_cache()
        redis_only = ReadThroughCache(
            config().cache_namespace,
            filter_name=config().filter_name,
            local_ttl=0,
            local=_NoLocalLevel(),
        )

        def read() -> Any:
            return selectors.product_get(product_id=product_id)

        read()  # connections open, scripts loaded
        results = {
            "database (loader only)": _time(lambda: selectors.product_load(product_id), runs),
            "cold (invalidated, through the cache)": _time(
                read, runs, before=lambda: cache.invalidate(key)
            ),
            "redis hit (local level off)": _time(
                lambda: redis_only.get(key, lambda: selectors.product_load(product_id)), runs
            ),
            "local hit (in-process level)": _time(read, runs),
        }
        self.stdout.write(f"product {product_id}, {runs} reads each (microseconds)")
        for name, samples in results.items():
            p50, p99 = _percentiles(samples)
            self.stdout.write(f"  {name:40s} p50 {p50:9.1f}   p99 {p99:9.1f}")

        # One thread, warm cache: the local level answers until its entry expires
        # (<= 1 s), then one Redis read refreshes it.
        count, deadline = 0, time.perf_counter() + options["seconds"]
        while time.perf_counter() < deadline:
            read()
            count += 1
        self.stdout.write(f"  warm reads per second, one thread: {count / options['seconds']:,.0f}")
