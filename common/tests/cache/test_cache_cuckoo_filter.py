"""The cuckoo filter on plain Redis commands: no false negatives, bounded false positives,
delete, a defined "full", rebuild swaps, and failing open when Redis cannot answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from conftest import ClusterNodes, unreachable_cluster
from redis.cluster import RedisCluster

from common.cache import cuckoo
from common.cache.client import CacheUnavailable
from common.cache.cuckoo import (
    BUCKET_SIZE,
    FALSE_POSITIVE_BOUND,
    TARGET_LOAD,
    CuckooFilter,
    false_positive_rate,
    geometry,
    rebuild,
)

INSERTED = 100_000
ABSENT_QUERIES = 500_000


@pytest.fixture
def big_filter(prefix: str) -> Iterator[CuckooFilter]:
    """100,000 ids added one batch at a time into a filter sized the way rebuild sizes it."""
    cf = CuckooFilter("big", key_prefix=prefix)
    assert cf.create(capacity=2 * INSERTED)
    assert all(cf.add_many(list(range(INSERTED))))
    yield cf
    cf.drop()


@pytest.mark.live
def test_no_inserted_id_is_ever_reported_absent(big_filter: CuckooFilter) -> None:
    answers = big_filter.might_contain_many(list(range(INSERTED)))
    assert answers.count(False) == 0
    info = big_filter.info()
    assert info is not None and (info.count, info.saturated) == (INSERTED, False)


@pytest.mark.live
def test_the_measured_false_positive_rate_is_within_the_documented_bound(
    big_filter: CuckooFilter,
) -> None:
    info = big_filter.info()
    assert info is not None
    absent = list(range(10**9, 10**9 + ABSENT_QUERIES))

    false_positives = big_filter.might_contain_many(absent).count(True)
    measured = false_positives / ABSENT_QUERIES

    print(
        f"\nload {info.load:.3f}: measured FPR {measured:.2e} ({false_positives} of "
        f"{ABSENT_QUERIES}), expected {info.expected_false_positive_rate:.2e}, "
        f"bound {FALSE_POSITIVE_BOUND:.2e}"
    )
    assert measured <= FALSE_POSITIVE_BOUND
    # and the formula really predicts it (2x: far beyond sampling noise at this size)
    assert measured <= 2 * info.expected_false_positive_rate


def test_the_documented_formulas() -> None:
    assert pytest.approx(8 / 65535, rel=1e-3) == FALSE_POSITIVE_BOUND  # 2b/(2^f - 1)
    assert false_positive_rate(0.5) == pytest.approx(FALSE_POSITIVE_BOUND / 2, rel=1e-3)
    for capacity in (1, 100, 3686, 3687, 100_000, 1_000_000):
        buckets, bits = geometry(capacity)
        assert buckets == 1 << bits
        assert buckets * BUCKET_SIZE * TARGET_LOAD >= capacity  # fits at <= 90% load
        assert buckets == 16 or (buckets // 2) * BUCKET_SIZE * TARGET_LOAD < capacity


@pytest.mark.live
def test_a_filter_holds_its_documented_capacity(prefix: str) -> None:
    cf = CuckooFilter("tight", key_prefix=prefix)
    capacity = int(1024 * BUCKET_SIZE * TARGET_LOAD)  # exactly 90% of 1024 buckets
    assert geometry(capacity)[0] == 1024
    cf.create(capacity)

    assert all(cf.add_many(list(range(capacity))))
    assert cf.might_contain_many(list(range(capacity))).count(False) == 0


@pytest.mark.live
def test_delete_removes_an_id_and_nothing_else(prefix: str) -> None:
    cf = CuckooFilter("delete", key_prefix=prefix)
    cf.create(5000)
    ids = list(range(2000))
    cf.add_many(ids)

    removed = cf.delete_many(ids[::2])

    assert all(removed)
    assert cf.might_contain_many(ids[1::2]).count(False) == 0  # kept ids: still there
    assert cf.might_contain_many(ids[::2]).count(True) <= 2  # deleted: gone (but for FPs)
    info = cf.info()
    assert info is not None and info.count == 1000
    assert cf.delete("never-added") is False


@pytest.mark.live
def test_a_full_filter_refuses_the_add_changes_nothing_and_then_answers_maybe(
    prefix: str, cluster: RedisCluster
) -> None:
    cf = CuckooFilter("full", key_prefix=prefix)
    cf.create(100)  # 32 buckets, 128 slots
    added: list[int] = []
    rejected = None
    for item in range(1000):
        before = cluster.get(cf.buckets_key)
        if not cf.add(item):
            rejected = item
            # the failed add undid every relocation: no stored fingerprint was lost
            assert cluster.get(cf.buckets_key) == before
            break
        added.append(item)
    assert rejected is not None
    info = cf.info()
    assert info is not None
    print(f"\nfirst refused add at load {len(added) / info.slots:.3f}")
    assert len(added) >= 100  # the documented capacity fitted
    assert info.count == len(added) and info.saturated

    # Saturated: it can no longer exclude anything, so it never answers "absent".
    assert cf.might_contain(rejected) is True
    assert all(cf.might_contain_many(list(range(10**6, 10**6 + 1000))))
    assert all(cf.might_contain_many(added))

    info = cf.rebuild([*added, rejected])
    # (the recent adds are also replayed from the journal: stored twice, which is harmless)
    assert not info.saturated and info.count >= len(added) + 1
    assert all(cf.might_contain_many([*added, rejected]))
    assert cf.might_contain_many(list(range(10**6, 10**6 + 1000))).count(True) <= 2


@pytest.mark.live
def test_a_filter_that_does_not_exist_answers_maybe_and_ignores_adds(prefix: str) -> None:
    cf = CuckooFilter("missing", key_prefix=prefix)
    assert cf.info() is None
    assert cf.might_contain(42) is True
    assert cf.add(42) is False
    assert cf.delete(42) is False
    assert cf.info() is None  # an add never creates a partial filter


@pytest.mark.live
def test_readers_never_see_an_id_vanish_while_the_filter_is_rebuilt(prefix: str) -> None:
    cf = CuckooFilter("swap", key_prefix=prefix)
    cf.rebuild(range(0, 20_000))
    kept = list(range(10_000, 20_000, 7))  # in the old and in the new filter
    misses = 0
    checks = 0
    done = threading.Event()

    def read() -> None:
        nonlocal misses, checks
        while not done.is_set():
            misses += cf.might_contain_many(kept).count(False)
            checks += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            info = rebuild("swap", range(10_000, 30_000), key_prefix=prefix)
    finally:
        done.set()
        reader.join()

    assert checks > 0 and misses == 0
    assert info.count == 20_000 and not info.saturated
    assert cf.might_contain_many(list(range(10_000, 30_000))).count(False) == 0
    assert cf.might_contain_many(list(range(0, 10_000))).count(True) <= 5  # old ids gone


@pytest.mark.live
def test_ids_added_while_a_rebuild_reads_its_snapshot_are_not_lost(prefix: str) -> None:
    cf = CuckooFilter("journal", key_prefix=prefix)
    cf.rebuild(range(100))
    cf.add(5000)  # created just before the rebuild's snapshot was read (and not in it)

    def snapshot() -> Iterator[int]:
        yield from range(100)
        cf.add(6000)  # created while the rebuild is running
        yield from range(100, 200)

    info = cf.rebuild(snapshot(), capacity=1000)

    assert not info.saturated
    assert cf.might_contain(5000) and cf.might_contain(6000)
    assert cf.might_contain_many(list(range(200))).count(False) == 0


@pytest.mark.live
def test_a_rebuild_that_cannot_prove_it_saw_every_recent_add_fails_open(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cuckoo, "JOURNAL_LENGTH", 5)
    cf = CuckooFilter("overflow", key_prefix=prefix)
    cf.rebuild(range(100))
    cf.add_many(list(range(1000, 1010)))  # more recent adds than the journal keeps

    info = cf.rebuild(range(100))

    assert info.saturated  # some of 1000..1009 may be missing: answer "maybe" for all
    assert all(cf.might_contain_many(list(range(1000, 1010))))


@pytest.mark.live
def test_when_redis_cannot_answer_the_filter_fails_open(prefix: str) -> None:
    cf = CuckooFilter("unreachable", client=unreachable_cluster(), key_prefix=prefix)

    assert cf.might_contain(1) is True
    assert cf.might_contain_many([1, 2, 3]) == [True, True, True]
    with pytest.raises(CacheUnavailable):
        cf.add(1)


def test_the_filter_survives_restarts_because_every_node_appends_to_its_aof(
    nodes: ClusterNodes,
) -> None:
    for port in nodes.ports:
        assert nodes.node(port).config_get("appendonly") == {"appendonly": "yes"}
