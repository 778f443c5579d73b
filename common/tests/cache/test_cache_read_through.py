"""ReadThroughCache, the API services code against: one load per cold key, no load for an
id the filter rejects, writes visible to every process within the local TTL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import FakeTable, another_process
from redis.cluster import RedisCluster

from common.cache.readthrough import MAX_LOCAL_TTL, ReadThroughCache

pytestmark = pytest.mark.live


def run_concurrently(count: int, target: Callable[[int], None]) -> None:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            target(i)
        except BaseException as exc:  # surfaced below: a thread's failure fails the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_fifty_concurrent_readers_of_a_cold_key_load_it_once(prefix: str) -> None:
    table = FakeTable({7: {"id": 7, "name": "lamp"}}, delay=0.2)
    cache = another_process(prefix, "products")
    answers: list[Any] = [None] * 50

    def read(i: int) -> None:
        answers[i] = cache.get(7, table.loader(7))

    run_concurrently(50, read)

    assert table.loads == 1
    assert answers == [{"id": 7, "name": "lamp"}] * 50


def test_readers_in_five_processes_load_a_cold_key_once(prefix: str) -> None:
    table = FakeTable({8: {"id": 8}}, delay=0.2)
    processes = [another_process(prefix, "products") for _ in range(5)]
    answers: list[Any] = [None] * 50

    def read(i: int) -> None:
        answers[i] = processes[i % 5].get(8, table.loader(8))

    run_concurrently(50, read)

    assert table.loads == 1
    assert answers == [{"id": 8}] * 50


def test_reads_of_ids_the_filter_rejects_never_reach_the_loader(prefix: str) -> None:
    table = FakeTable({i: {"id": i} for i in range(1, 1001)})
    cache = another_process(prefix, "products", filter_name="products")
    assert cache.filter is not None
    cache.filter.rebuild(table.rows)

    answers = [cache.get(i, table.loader(i)) for i in range(100_001, 101_001)]

    assert answers == [None] * 1000
    assert table.loads == 0
    assert cache.get(500, table.loader(500)) == {"id": 500}  # an existing id still loads
    assert table.loads == 1


def test_an_invalidation_is_read_by_the_writer_at_once_and_by_others_within_local_ttl(
    prefix: str,
) -> None:
    table = FakeTable({1: {"id": 1, "price": 100}})
    writer = another_process(prefix, "products", local_ttl=1.0)
    reader = another_process(prefix, "products", local_ttl=1.0)
    assert writer.get(1, table.loader(1)) == {"id": 1, "price": 100}
    assert reader.get(1, table.loader(1)) == {"id": 1, "price": 100}  # now in its local level

    table.rows[1] = {"id": 1, "price": 120}  # the update commits...
    writer.invalidate(1)  # ...then invalidates
    invalidated_at = time.monotonic()

    assert writer.get(1, table.loader(1)) == {"id": 1, "price": 120}
    # Whatever the reader kept locally was stored before the invalidation, so it is gone
    # local_ttl later; from then on every read in that process gets the new value.
    time.sleep(max(0.0, invalidated_at + reader.local_ttl - time.monotonic()))
    assert reader.get(1, table.loader(1)) == {"id": 1, "price": 120}


def test_a_set_value_is_served_everywhere_without_loading(prefix: str) -> None:
    table = FakeTable({3: {"id": 3, "stock": 5}})
    writer = another_process(prefix, "products")
    reader = another_process(prefix, "products")

    writer.set(3, {"id": 3, "stock": 4})

    assert reader.get(3, table.loader(3)) == {"id": 3, "stock": 4}
    assert table.loads == 0


def test_a_load_that_began_before_a_write_does_not_cache_its_older_value(prefix: str) -> None:
    table = FakeTable({4: {"id": 4, "v": 1}})
    slow_reader = another_process(prefix, "products")
    writer = another_process(prefix, "products")
    loading = threading.Event()
    release = threading.Event()
    answers: list[Any] = []

    def slow_load() -> dict[str, Any] | None:
        old = dict(table.rows[4])  # the read happens before the write commits
        loading.set()
        release.wait(10)
        return old

    thread = threading.Thread(target=lambda: answers.append(slow_reader.get(4, slow_load)))
    thread.start()
    assert loading.wait(10)
    table.rows[4] = {"id": 4, "v": 2}
    writer.invalidate(4)
    release.set()
    thread.join()

    assert answers == [{"id": 4, "v": 1}]  # that one read overlapped the write: fine
    fresh = another_process(prefix, "products")
    assert fresh.get(4, table.loader(4)) == {"id": 4, "v": 2}  # but it was not cached
    assert table.loads == 1


def test_absent_rows_are_cached_briefly_and_a_create_clears_that(prefix: str) -> None:
    table = FakeTable()
    cache = another_process(prefix, "products", filter_name="products", negative_ttl=30)
    assert cache.filter is not None
    cache.filter.rebuild([9])  # 9 is in the filter, but its row is gone

    assert cache.get(9, table.loader(9)) is None
    second_process = another_process(prefix, "products", filter_name="products")
    assert second_process.get(9, table.loader(9)) is None
    assert table.loads == 1  # the second process read the cached "does not exist"

    table.rows[10] = {"id": 10}  # created...
    cache.filter_add(10)  # ...then recorded
    assert cache.get(10, table.loader(10)) == {"id": 10}

    table.rows[9] = {"id": 9}
    cache.filter_add(9)  # re-created: the cached "does not exist" goes too
    assert cache.get(9, table.loader(9)) == {"id": 9}

    del table.rows[10]  # deleted...
    cache.filter_remove(10)  # ...then recorded
    loads = table.loads
    assert cache.get(10, table.loader(10)) is None
    assert table.loads == loads  # the filter rejects it again


def test_get_many_loads_only_what_no_level_knows(prefix: str) -> None:
    table = FakeTable({i: {"id": i} for i in range(1, 21)})
    cache = another_process(prefix, "products", filter_name="products")
    assert cache.filter is not None
    cache.filter.rebuild(range(1, 21))
    cache.get(1, table.loader(1))
    requested: list[list[Any]] = []

    def loader_many(keys: list[Any]) -> dict[Any, dict[str, Any]]:
        requested.append(keys)
        return table.loader_many(keys)

    keys: list[int | str] = [1, "2", 3, 3, 99_999, 15]
    answer = cache.get_many(keys, loader_many)

    assert answer == {1: {"id": 1}, "2": {"id": 2}, 3: {"id": 3}, 15: {"id": 15}}
    assert requested == [["2", 3, 15]]  # 1 was cached, 99,999 rejected by the filter
    assert cache.get_many(keys, loader_many) == answer
    assert len(requested) == 1  # everything came from the cache the second time
    assert another_process(prefix, "products").get(15, table.loader(15)) == {"id": 15}


def test_a_hit_and_a_miss_answer_the_same_json(prefix: str) -> None:
    cache = another_process(prefix, "products")
    miss = cache.get(5, lambda: {"tags": ("a", "b"), "dims": {1: 2}})
    hit = another_process(prefix, "products").get(5, lambda: None)
    assert miss == hit == {"tags": ["a", "b"], "dims": {"1": 2}}


def test_values_json_cannot_encode_are_refused(prefix: str) -> None:
    from decimal import Decimal

    cache = another_process(prefix, "products")
    with pytest.raises(TypeError):
        cache.get(6, lambda: {"price": Decimal("1.00")})
    with pytest.raises(TypeError):
        cache.set(6, {"price": Decimal("1.00")})


def test_the_local_level_cannot_outlive_the_promised_bound(prefix: str) -> None:
    with pytest.raises(ValueError):
        ReadThroughCache("products", key_prefix=prefix, local_ttl=MAX_LOCAL_TTL + 0.5)


def test_keys_of_one_entry_share_a_slot_and_carry_the_service_prefix(
    prefix: str, cluster: RedisCluster
) -> None:
    cache = another_process(prefix, "products")
    cache.get(11, lambda: {"id": 11})

    keys = sorted(k.decode() for k in cluster.scan_iter(match=f"{prefix}:*"))
    assert f"{prefix}:{{products:11}}:v" in keys
    assert all(k.startswith(f"{prefix}:{{products:11}}:") for k in keys)
    assert cluster.get(f"{prefix}:{{products:11}}:v") == b'{"id":11}'  # JSON, not pickle
