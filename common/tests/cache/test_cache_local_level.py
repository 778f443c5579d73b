"""The in-process level: lifetime, size bound, and no stale put after an invalidation."""

from __future__ import annotations

import threading

import pytest

from common.cache.local import LocalCache, shared_local_cache


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_served_until_its_ttl_and_never_after() -> None:
    clock = FakeClock()
    local = LocalCache(clock=clock)
    local.put("k", b"v", ttl=1.0)

    clock.now += 0.999
    assert local.get("k") == b"v"
    clock.now += 0.001
    assert local.get("k") is None
    assert len(local) == 0


def test_the_least_recently_used_entry_goes_first_when_full() -> None:
    local = LocalCache(max_entries=3)
    for key in "abc":
        local.put(key, key.encode(), ttl=10)
    assert local.get("a") == b"a"  # a is now the most recently used

    local.put("d", b"d", ttl=10)

    assert local.get("b") is None
    assert [local.get(k) for k in "acd"] == [b"a", b"c", b"d"]
    assert len(local) == 3


def test_a_read_that_began_before_an_invalidation_cannot_put_its_value_back() -> None:
    local = LocalCache()
    epoch = local.epoch()  # a reader starts, fetches the old value from Redis...
    local.delete("k")  # ...while a writer in this process invalidates the key

    assert local.put("k", b"old", ttl=1.0, epoch=epoch) is False
    assert local.get("k") is None
    assert local.put("k", b"new", ttl=1.0, epoch=local.epoch()) is True


def test_a_zero_ttl_disables_the_level() -> None:
    local = LocalCache()
    assert local.put("k", b"v", ttl=0) is False
    assert local.get("k") is None


def test_concurrent_writers_never_exceed_the_bound() -> None:
    local = LocalCache(max_entries=50)

    def fill(worker: int) -> None:
        for i in range(2000):
            local.put(f"{worker}:{i}", b"x", ttl=10)
            local.get(f"{worker}:{i // 2}")

    threads = [threading.Thread(target=fill, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(local) == 50


def test_one_namespace_shares_one_level_per_process() -> None:
    products = shared_local_cache("ns-x", max_entries=5)
    assert shared_local_cache("ns-x", max_entries=5) is products
    assert shared_local_cache("ns-y", max_entries=5) is not products


def test_a_level_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError):
        LocalCache(max_entries=0)
