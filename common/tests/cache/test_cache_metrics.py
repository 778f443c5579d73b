"""cache_requests_total{cache,result}: each key read counts once, by the level that
answered it. The first case needs no Redis (a cluster that refuses every command); the
others use the running cluster."""

from __future__ import annotations

import uuid

import pytest
from conftest import FakeTable, another_process, unreachable_cluster
from prometheus_client import REGISTRY

from common.cache.local import LocalCache
from common.cache.readthrough import ReadThroughCache

RESULTS = ("hit_local", "hit", "miss", "filtered")


def counts(namespace: str) -> dict[str, float]:
    return {
        result: REGISTRY.get_sample_value(
            "cache_requests_total", {"cache": namespace, "result": result}
        )
        or 0.0
        for result in RESULTS
    }


def moved(namespace: str, before: dict[str, float]) -> dict[str, float]:
    now = counts(namespace)
    return {
        result: now[result] - before[result] for result in RESULTS if now[result] != before[result]
    }


def fresh_namespace() -> str:
    return f"metrics-{uuid.uuid4().hex[:8]}"


def test_without_redis_a_read_is_a_miss_then_a_local_hit() -> None:
    namespace = fresh_namespace()
    cache = ReadThroughCache(
        namespace, key_prefix=namespace, client=unreachable_cluster(), local=LocalCache()
    )
    table = FakeTable({1: {"name": "lamp"}})
    assert counts(namespace) == dict.fromkeys(RESULTS, 0.0)  # every series exists at once

    before = counts(namespace)
    assert cache.get(1, table.loader(1)) == {"name": "lamp"}
    assert moved(namespace, before) == {"miss": 1}

    before = counts(namespace)
    assert cache.get(1, table.loader(1)) == {"name": "lamp"}
    assert moved(namespace, before) == {"hit_local": 1}


@pytest.mark.live
def test_get_counts_the_level_that_answered(prefix: str) -> None:
    namespace = fresh_namespace()
    table = FakeTable({1: {"name": "lamp"}})
    writer = another_process(prefix, namespace, filter_name=namespace)
    assert writer.filter is not None
    writer.filter.rebuild(table.rows)
    reader = another_process(prefix, namespace, filter_name=namespace)

    before = counts(namespace)
    writer.get(1, table.loader(1))  # nowhere yet: loaded and stored
    assert moved(namespace, before) == {"miss": 1}

    before = counts(namespace)
    reader.get(1, table.loader(1))  # in Redis
    reader.get(1, table.loader(1))  # now in the reader's local level too
    assert moved(namespace, before) == {"hit": 1, "hit_local": 1}

    before = counts(namespace)
    assert reader.get(424242, table.loader(424242)) is None  # never added to the filter
    assert moved(namespace, before) == {"filtered": 1}
    assert table.loads == 1


@pytest.mark.live
def test_get_many_counts_each_key(prefix: str) -> None:
    namespace = fresh_namespace()
    table = FakeTable({1: {"name": "lamp"}, 2: {"name": "desk"}})
    cache = another_process(prefix, namespace, filter_name=namespace)
    assert cache.filter is not None
    cache.filter.rebuild(table.rows)
    another_process(prefix, namespace).get(1, table.loader(1))  # 1 is in Redis
    reader = another_process(prefix, namespace, filter_name=namespace)

    before = counts(namespace)
    found = reader.get_many([1, 2, 424242], table.loader_many)
    assert found == {1: {"name": "lamp"}, 2: {"name": "desk"}}
    assert moved(namespace, before) == {"hit": 1, "miss": 1, "filtered": 1}

    before = counts(namespace)
    reader.get_many([1, 2, 424242], table.loader_many)
    assert moved(namespace, before) == {"hit_local": 2, "filtered": 1}
