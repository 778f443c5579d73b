"""The distributed lock: mutual exclusion, token-checked release and extend, expiry."""

from __future__ import annotations

import threading

import pytest
from conftest import wait_until
from redis.cluster import RedisCluster

from common.cache.lock import LockNotAcquired, RedisLock, named_lock

pytestmark = pytest.mark.live


def test_only_one_thread_at_a_time_holds_the_lock(prefix: str) -> None:
    key = f"{prefix}:lock:{{exclusion}}"
    inside = 0
    most_inside = 0
    total = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most_inside, total
        for _ in range(5):
            with RedisLock(key, ttl=5, wait=30):
                with guard:
                    inside += 1
                    most_inside = max(most_inside, inside)
                seen = total
                threading.Event().wait(0.002)  # widen the window for a lost update
                total = seen + 1
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most_inside == 1
    assert total == 16 * 5  # no update lost: the read-modify-write never interleaved


def test_a_stale_holder_can_neither_release_nor_extend_the_next_holders_lock(
    prefix: str, cluster: RedisCluster
) -> None:
    key = f"{prefix}:lock:{{stale}}"
    first = RedisLock(key, ttl=0.2)
    assert first.acquire(blocking=False)
    assert wait_until(lambda: not cluster.exists(key), timeout=5)  # expired under it

    second = RedisLock(key, ttl=30)
    assert second.acquire(blocking=False)

    assert first.extend(30) is False
    assert first.release() is False
    assert second.owned()
    assert second.token is not None and cluster.get(key) == second.token.encode()
    assert second.release() is True
    assert not cluster.exists(key)


def test_a_lock_that_is_never_released_expires(prefix: str) -> None:
    key = f"{prefix}:lock:{{expiry}}"
    crashed_holder = RedisLock(key, ttl=1.0)
    assert crashed_holder.acquire(blocking=False)
    waiter = RedisLock(key, ttl=5)
    assert waiter.acquire(blocking=False) is False

    assert waiter.acquire(timeout=10) is True  # once the holder's TTL ran out
    assert waiter.owned()
    waiter.release()


def test_extend_gives_the_holder_a_new_time_to_live(prefix: str, cluster: RedisCluster) -> None:
    lock = RedisLock(f"{prefix}:lock:{{extend}}", ttl=0.5)
    assert lock.acquire(blocking=False)

    assert lock.extend(60) is True

    assert cluster.pttl(lock.key) > 30_000
    assert lock.release() is True


def test_the_context_manager_raises_when_the_lock_stays_taken(prefix: str) -> None:
    holder = named_lock("busy", ttl=30, key_prefix=prefix)
    assert holder.key == f"{prefix}:lock:{{busy}}"
    assert holder.acquire(blocking=False)

    with pytest.raises(LockNotAcquired), named_lock("busy", wait=0.1, key_prefix=prefix):
        pass

    holder.release()
    with named_lock("busy", wait=1, key_prefix=prefix) as lock:
        assert lock.owned()
    assert not lock.owned()


def test_one_lock_object_is_one_holder(prefix: str) -> None:
    lock = RedisLock(f"{prefix}:lock:{{reentry}}", ttl=5)
    assert lock.acquire(blocking=False)
    with pytest.raises(RuntimeError):
        lock.acquire(blocking=False)
    lock.release()
