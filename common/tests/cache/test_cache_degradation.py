"""A cache outage makes reads slower, never wrong, and never raises into the caller:
first with a client whose every command fails, then with a real master stopped."""

from __future__ import annotations

import time

import pytest
from conftest import ClusterNodes, FakeTable, another_process, unreachable_cluster, wait_until
from redis.cluster import RedisCluster, key_slot

from common.cache.client import breaker
from common.cache.local import LocalCache
from common.cache.readthrough import ReadThroughCache
from common.cache.repairs import repairs

pytestmark = pytest.mark.live


def test_with_redis_unreachable_reads_load_from_the_database_and_writes_do_not_raise(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    table = FakeTable({1: {"id": 1}})
    cache = ReadThroughCache(
        "products",
        key_prefix=prefix,
        client=unreachable_cluster(),
        local=LocalCache(),
        filter_name="products",
        local_ttl=0,
        ttl=1,
    )

    assert cache.get(1, table.loader(1)) == {"id": 1}
    assert cache.get(2, table.loader(2)) is None  # the filter fails open: the DB decides
    assert cache.get_many([1, 2], table.loader_many) == {1: {"id": 1}}
    cache.set(1, {"id": 1, "v": 2})
    cache.invalidate(1)
    cache.filter_add(3)
    cache.filter_remove(3)

    assert table.loads == 3
    assert not breaker.allows("127.0.0.1:1")  # the dead node is skipped for a while
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert 0 < len(warnings) < 10  # logged, but rate-limited


@pytest.mark.slow
def test_a_stopped_master_never_makes_a_read_wrong(
    prefix: str, nodes: ClusterNodes, cluster: RedisCluster
) -> None:
    table = FakeTable({i: {"id": i, "v": 0} for i in range(1, 301)})
    writer = another_process(prefix, "products", filter_name="products")
    other = another_process(prefix, "products", filter_name="products")
    assert writer.filter is not None
    writer.filter.rebuild(table.rows)
    victim = nodes.master_of_key(writer.filter.meta_key)  # holds the filter, too
    on_victim = [i for i in table.rows if nodes.master_of_key(writer._keys(str(i))[0]) == victim]
    elsewhere = [i for i in table.rows if i not in on_victim]
    assert on_victim and elsewhere
    for i in table.rows:  # everything warm in Redis
        assert writer.get(i, table.loader(i)) == table.rows[i]
    absent = 10**6

    def check_every_read(reader: ReadThroughCache) -> None:
        for i in table.rows:
            assert reader.get(i, table.loader(i)) == table.rows[i]
        assert reader.get(absent, table.loader(absent)) is None

    slot = key_slot(writer.filter.meta_key.encode())
    try:
        nodes.stop(victim)
        started = time.monotonic()

        # While the master is down (and then failing over): the writer's reads are right,
        # writes succeed, and nothing raises.
        updates = 0
        while not nodes.failed_over(victim, slot):
            assert time.monotonic() - started < 60, "no failover within 60s"
            key = on_victim[updates % len(on_victim)]
            table.rows[key] = {"id": key, "v": table.rows[key]["v"] + 1}
            writer.invalidate(key)
            updates += 1
            check_every_read(writer)
        print(
            f"\nmaster {victim} stopped: failover after {time.monotonic() - started:.1f}s, "
            f"{updates} rounds of a write and {len(table.rows) + 1} reads meanwhile"
        )
        assert updates > 0

        # After the failover the promoted replica may still hold values written before
        # the outage; the writer keeps reading right until its repairs have landed...
        def writer_reads_right_until_repaired() -> bool:
            check_every_read(writer)
            return repairs.pending() == 0

        assert wait_until(writer_reads_right_until_repaired, timeout=30)
        # ...and from then on every process does.
        time.sleep(other.local_ttl)
        check_every_read(other)
        check_every_read(another_process(prefix, "products", filter_name="products"))
    finally:
        nodes.start(victim)
        nodes.wait_healthy()

    check_every_read(writer)
    info = writer.filter.info()  # the filter survived the loss of its node
    assert info is not None and not info.saturated
    assert writer.filter.might_contain_many(list(table.rows)).count(False) == 0
