"""Broadcast invalidations: a write in one process drops the entry from every other
process's local level, one message per batch; a listener that lost its connection
drops its whole local level; one that hears nothing serves at most `local_ttl` stale.

"Another process" is a cache object with a local level (and listener) of its own. Its
local level runs on a clock the test moves, so an entry never expires by itself: only
an invalidation (or a reset) can make it go, and a test that passes proves that.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from conftest import ClusterNodes, FakeTable, wait_until
from redis.cluster import RedisCluster, key_slot

from common.cache.invalidation import channel_name
from common.cache.local import LocalCache
from common.cache.readthrough import ReadThroughCache
from common.testing import ManualClock

pytestmark = pytest.mark.live

SETTLE = 30.0  # deadline for what happens asynchronously (a bound on a hang, not a timing)


@pytest.fixture
def caches(prefix: str) -> Iterator[list[ReadThroughCache]]:
    """Collects the test's broadcasting caches and stops their listeners afterwards."""
    made: list[ReadThroughCache] = []
    yield made
    for cache in made:
        if cache.listener is not None:
            cache.listener.stop()


def process(
    prefix: str,
    caches: list[ReadThroughCache],
    clock: ManualClock | None = None,
    **kwargs: Any,
) -> ReadThroughCache:
    """A broadcasting cache as another process has it, subscribed before it is answered."""
    local = LocalCache(clock=clock) if clock is not None else LocalCache()
    cache = ReadThroughCache("products", key_prefix=prefix, local=local, broadcast=True, **kwargs)
    caches.append(cache)
    assert cache.listener is not None
    assert cache.listener.subscribed.wait(SETTLE)
    return cache


def locally_cached(cache: ReadThroughCache, key: str) -> bool:
    return cache._local.get(key) is not None


def test_an_invalidation_in_one_process_drops_the_entry_in_every_other_process(
    prefix: str, caches: list[ReadThroughCache]
) -> None:
    # Given two readers whose local entries never expire on their own, holding stock 5
    table = FakeTable({7: {"id": 7, "inventory": 5}})
    writer = process(prefix, caches)
    readers = [process(prefix, caches, ManualClock()), process(prefix, caches, ManualClock())]
    for reader in readers:
        assert reader.get(7, table.loader(7)) == {"id": 7, "inventory": 5}
        assert locally_cached(reader, "7")

    # when another process changes the stock and invalidates the product
    table.rows[7]["inventory"] = 4
    writer.invalidate(7)

    # then both readers drop their entry, and read the new stock
    for reader in readers:
        assert wait_until(lambda r=reader: not locally_cached(r, "7"), timeout=SETTLE)  # type: ignore[misc]
        assert reader.get(7, table.loader(7)) == {"id": 7, "inventory": 4}


def test_a_batch_of_invalidations_is_one_message_naming_every_key(
    prefix: str, caches: list[ReadThroughCache], cluster: RedisCluster
) -> None:
    # Given a raw subscriber on the namespace's channel
    channel = channel_name(prefix, "products")
    node = cluster.get_node_from_key(channel)
    pubsub = redis.Redis(host=node.host, port=node.port).pubsub()
    pubsub.ssubscribe(channel)
    confirmation = pubsub.get_message(timeout=SETTLE)
    assert confirmation is not None and confirmation["type"] == "ssubscribe"
    writer = process(prefix, caches)

    # when one call invalidates three products, then another invalidates a fourth
    writer.invalidate_many([1, 2, 3])
    writer.invalidate(4)

    # then the channel carried exactly two messages: the three keys, then the fourth
    def next_message() -> dict[str, Any]:
        for _ in range(100):
            message = pubsub.get_message(timeout=SETTLE / 100)
            if message is not None and message["type"] == "smessage":
                return dict(json.loads(message["data"]))
        raise AssertionError("no message")

    try:
        assert next_message()["keys"] == ["1", "2", "3"]
        assert next_message()["keys"] == ["4"]
    finally:
        pubsub.close()


def test_a_listener_that_lost_its_connection_drops_its_whole_local_level(
    prefix: str, caches: list[ReadThroughCache], cluster: RedisCluster
) -> None:
    # Given a reader holding two products in a local level that never expires by itself
    table = FakeTable({1: {"id": 1, "inventory": 5}, 2: {"id": 2, "inventory": 9}})
    writer = process(prefix, caches)
    reader = process(prefix, caches, ManualClock())
    assert reader.listener is not None
    reader.get(1, table.loader(1))
    reader.get(2, table.loader(2))
    assert locally_cached(reader, "1") and locally_cached(reader, "2")

    # when its subscription's connection is killed (a network failure), and product 1
    # changes while it may not be listening
    node = cluster.get_node_from_key(reader.listener.channel)
    direct = redis.Redis(host=node.host, port=node.port)
    ids = [c["id"] for c in direct.client_list() if c.get("name") == reader.listener.client_name]
    assert ids, "the listener's connection is on the channel's node"
    direct.client_kill_filter(_id=ids[0])
    table.rows[1]["inventory"] = 4
    writer.invalidate(1)

    # then once it is subscribed again, nothing it held before survives: not the
    # product whose invalidation it may have missed, nor the one that did not change
    assert wait_until(lambda: reader.listener.subscriptions >= 2, timeout=SETTLE)  # type: ignore[union-attr]
    assert not locally_cached(reader, "1")
    assert not locally_cached(reader, "2")
    assert reader.get(1, table.loader(1)) == {"id": 1, "inventory": 4}


def test_a_process_that_hears_nothing_serves_a_stale_entry_at_most_local_ttl(
    prefix: str, caches: list[ReadThroughCache]
) -> None:
    # Given a reader whose listener is down (it will miss every invalidation)
    clock = ManualClock()
    table = FakeTable({7: {"id": 7, "inventory": 5}})
    writer = process(prefix, caches)
    reader = process(prefix, caches, clock, local_ttl=1.0)
    assert reader.listener is not None
    reader.listener.stop()
    reader.listener.ensure_running = lambda: None  # type: ignore[method-assign]
    assert reader.get(7, table.loader(7)) == {"id": 7, "inventory": 5}

    # when the stock changes and the product is invalidated
    table.rows[7]["inventory"] = 4
    writer.invalidate(7)

    # then the reader may serve the old stock until its entry's lifetime ends, not after
    clock.now += 0.999
    assert reader.get(7, table.loader(7)) == {"id": 7, "inventory": 5}
    clock.now += 0.001
    assert reader.get(7, table.loader(7)) == {"id": 7, "inventory": 4}


def test_the_listener_follows_a_failover_of_the_channels_master(
    prefix: str, caches: list[ReadThroughCache], nodes: ClusterNodes
) -> None:
    # Given a reader subscribed on the master that owns the channel's slot
    table = FakeTable({7: {"id": 7, "inventory": 5}})
    writer = process(prefix, caches)
    reader = process(prefix, caches, ManualClock())
    assert reader.listener is not None
    slot = key_slot(reader.listener.channel.encode())
    old_master = nodes.master_of_slot(slot)
    before = reader.listener.subscriptions

    # when that master dies and its replica takes over
    nodes.stop(old_master)
    assert wait_until(lambda: nodes.failed_over(old_master, slot), timeout=120, interval=0.25)
    assert wait_until(
        lambda: (
            reader.listener.subscribed.is_set()  # type: ignore[union-attr]
            and reader.listener.subscriptions > before
        ),  # type: ignore[union-attr]
        timeout=120,
        interval=0.1,
    )

    # then an invalidation published after the failover still reaches it
    reader.get(7, table.loader(7))
    assert locally_cached(reader, "7")
    table.rows[7]["inventory"] = 4

    def invalidated() -> bool:
        writer.invalidate(7)  # repeated: the writer's client may still be following
        return not locally_cached(reader, "7")

    assert wait_until(invalidated, timeout=SETTLE, interval=0.1)
    assert reader.get(7, table.loader(7)) == {"id": 7, "inventory": 4}
