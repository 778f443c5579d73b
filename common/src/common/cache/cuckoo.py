"""A cuckoo filter on plain Redis commands (Lua scripts, no module): which ids may exist.

A read for an id the filter rejects never reaches the database (cache penetration).
The filter can only be wrong in one direction: it may say "maybe" for an id that does
not exist (a false positive, which costs a database read), never "absent" for an id
that was added (a false negative, which would hide a real row).

Layout (one hash slot, so every script touches one node): for a filter `name` of the
service with key prefix `p`, the keys are `{cf:p:name}:buckets` (a string of 8-byte
buckets, each four 16-bit fingerprints), `{cf:p:name}:meta` (a hash), `{cf:p:name}:journal`
(recent adds, for rebuilds) and, during a rebuild, `{cf:p:name}:next:*`. Redis' AOF
(appendonly yes in the platform's node config) and the replicas keep it across restarts
and failovers.

Capacity and false positives. With b = 4 fingerprints per bucket, f = 16-bit fingerprints
(values 1..65535, 0 marks an empty slot) and two candidate buckets per item, a lookup
compares against at most 2b = 8 stored fingerprints, each equal to the query's with
probability 1/65535, so at load factor a (items / slots)

    FPR(a) = 1 - (1 - 1/65535) ** (2 * b * a)  ~=  8a / 65535

which is at most FALSE_POSITIVE_BOUND = 1 - (1 - 1/65535) ** 8 ~= 1.22e-4 (0.0122%) for a
full filter. A filter created for `capacity` items has the smallest power-of-two number
of buckets with 4 * buckets * TARGET_LOAD >= capacity, so it holds `capacity` items at a
load of at most 90%, where insertion with up to MAX_KICKS = 500 relocations practically
never fails (b = 4 cuckoo filters fill to ~95% before the first failure).

When full: an add that finds no place after MAX_KICKS relocations undoes its relocations
(no stored fingerprint is lost), answers False and marks the filter saturated; a
saturated filter answers "maybe" for every id until `rebuild()` replaces it. A filter
that does not exist (never built, evicted) also answers "maybe", and adds to it are no-ops
that answer False. When Redis cannot be reached `might_contain` answers True (fail open
to the database: never wrong, only slower); `add` and `delete` raise `CacheUnavailable`.

Delete removes one stored copy of the item's fingerprint. Only delete ids that were
added: deleting an id that was never added may remove another id's identical fingerprint
and make that id a false negative. Adding the same id twice stores two copies (a delete
then leaves one: a false positive, never a false negative).

`rebuild(name, ids)` builds a new filter under `:next:` and swaps it in with RENAME inside
one script, so readers never see an empty or half-built filter. Ids added while it runs
(or up to JOURNAL_MARGIN seconds before it started, in case `ids` was read earlier) are
replayed from the journal into the new filter before the swap; those that were also in
`ids` are then stored twice, which costs a slot and is otherwise harmless. If the journal
cannot prove it still holds every add of that window, the new filter is marked saturated.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from redis.cluster import RedisCluster

from common.cache.client import CacheUnavailable, call, config
from common.cache.lock import RedisLock
from common.cache.scripts import LuaScript

logger = logging.getLogger("common.cache")

BUCKET_SIZE = 4
FINGERPRINT_BITS = 16
FINGERPRINT_VALUES = (1 << FINGERPRINT_BITS) - 1  # 1..65535; 0 is an empty slot
MAX_KICKS = 500
TARGET_LOAD = 0.9
MIN_BUCKETS = 16
MAX_BUCKETS = 1 << 25  # a 256 MiB string: far beyond any catalog here
MIN_REBUILD_CAPACITY = 1024
JOURNAL_LENGTH = 10_000
JOURNAL_MARGIN = 300.0  # seconds before a rebuild started whose adds it replays
BATCH = 2000  # items per script call
REBUILD_KEY_TTL = 3600.0  # an abandoned half-built filter disappears by itself
REBUILD_LOCK_TTL = 60.0  # extended after every batch

Item = str | int


def false_positive_rate(load: float) -> float:
    """Expected false-positive probability of one lookup at `load` (items / slots)."""
    return 1.0 - (1.0 - 1.0 / FINGERPRINT_VALUES) ** (2 * BUCKET_SIZE * load)


FALSE_POSITIVE_BOUND = false_positive_rate(1.0)  # ~1.22e-4: no load can exceed it


def geometry(capacity: int) -> tuple[int, int]:
    """(buckets, log2 buckets) of a filter that holds `capacity` items at <= TARGET_LOAD."""
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    needed = math.ceil(capacity / (BUCKET_SIZE * TARGET_LOAD))
    buckets = max(MIN_BUCKETS, 1 << max(0, needed - 1).bit_length())
    if buckets > MAX_BUCKETS:
        raise ValueError(f"capacity {capacity} exceeds what one filter key can hold")
    return buckets, buckets.bit_length() - 1


def item_hash(item: Item) -> tuple[int, int]:
    """(fingerprint 1..65535, 32-bit bucket hash) of an id; ints and their str are equal."""
    digest = hashlib.blake2b(str(item).encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    return (value >> 32) % FINGERPRINT_VALUES + 1, value & 0xFFFFFFFF


def _pairs(items: Sequence[Item]) -> list[int]:
    out: list[int] = []
    for item in items:
        out.extend(item_hash(item))
    return out


def _batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass(frozen=True)
class FilterInfo:
    name: str
    buckets: int
    capacity: int
    count: int
    saturated: bool

    @property
    def slots(self) -> int:
        return self.buckets * BUCKET_SIZE

    @property
    def load(self) -> float:
        return self.count / self.slots

    @property
    def expected_false_positive_rate(self) -> float:
        return false_positive_rate(self.load)


_PRELUDE = "cuckoo_common.lua"
_ADD = LuaScript.from_files(_PRELUDE, "cuckoo_add.lua")
_CHECK = LuaScript.from_files(_PRELUDE, "cuckoo_check.lua")
_DELETE = LuaScript.from_files(_PRELUDE, "cuckoo_delete.lua")
_CREATE = LuaScript.from_files(_PRELUDE, "cuckoo_create.lua")
_SWAP = LuaScript.from_files(_PRELUDE, "cuckoo_swap.lua")


class CuckooFilter:
    """One named filter of this service (see the module docstring for its guarantees)."""

    def __init__(
        self,
        name: str,
        *,
        client: RedisCluster | None = None,
        key_prefix: str | None = None,
        max_kicks: int = MAX_KICKS,
    ) -> None:
        prefix = key_prefix if key_prefix is not None else config().key_prefix
        self.name = name
        self.max_kicks = max_kicks
        self._client = client
        tag = f"{{cf:{prefix}:{name}}}"
        self.buckets_key = f"{tag}:buckets"
        self.meta_key = f"{tag}:meta"
        self.journal_key = f"{tag}:journal"
        self.next_buckets_key = f"{tag}:next:buckets"
        self.next_meta_key = f"{tag}:next:meta"
        self.lock_key = f"{tag}:rebuild-lock"

    def _run(self, op: str, script: LuaScript, keys: list[str], args: Sequence[int | str]) -> list:
        result = call(
            f"cuckoo {op}",
            self.meta_key,
            lambda c: script(c, keys, args),
            client=self._client,
        )
        return list(result)

    # -- building --------------------------------------------------------------------

    def create(self, capacity: int, *, replace: bool = False) -> bool:
        """Create an empty filter for `capacity` items; False if one exists (and not replace).

        An empty filter says "absent" for everything: create it only when nothing exists
        yet (a new catalog), otherwise `rebuild()` it from the ids that do.
        """
        buckets, bits = geometry(capacity)
        keys = [self.buckets_key, self.meta_key]
        args = [buckets, bits, capacity, 1 if replace else 0, 0]
        created = call(
            "cuckoo create",
            self.meta_key,
            lambda c: _CREATE(c, keys, args),
            client=self._client,
        )
        return bool(created)

    def rebuild(
        self, ids: Iterable[Item], *, capacity: int | None = None, lock_wait: float = 30.0
    ) -> FilterInfo:
        """Replace the filter by one holding exactly `ids` (plus adds made meanwhile).

        `capacity` defaults to twice the number of ids (room to grow until the next
        rebuild), at least MIN_REBUILD_CAPACITY; with `capacity` given, `ids` is
        streamed instead of read into a list. Raises `LockNotAcquired` if another rebuild
        of this filter holds the lock past `lock_wait`, `CacheUnavailable` if the cluster
        fails; in both cases the live filter is untouched.
        """
        if capacity is None:
            ids = list(ids)
            capacity = max(2 * len(ids), MIN_REBUILD_CAPACITY)
        buckets, bits = geometry(capacity)
        lock = RedisLock(self.lock_key, ttl=REBUILD_LOCK_TTL, wait=lock_wait, client=self._client)
        with lock:
            next_keys = [self.next_buckets_key, self.next_meta_key]
            args = [buckets, bits, capacity, 1, int(REBUILD_KEY_TTL * 1000)]
            call(
                "cuckoo rebuild",
                self.meta_key,
                lambda c: _CREATE(c, next_keys, args),
                client=self._client,
            )
            failed = 0
            for batch in _batches(ids, BATCH):
                keys = [*next_keys, self.journal_key]
                no_journal = 0
                seed = random.getrandbits(31)
                args = [self.max_kicks, seed, no_journal, *_pairs(batch)]
                result = self._run("rebuild", _ADD, keys, args)
                if result[0] == 0:
                    raise CacheUnavailable(f"filter {self.name}: the filter being built vanished")
                failed += result[1:].count(0)
                if not lock.extend():
                    raise CacheUnavailable(f"filter {self.name}: rebuild lock lost")
            swap_keys = [
                self.buckets_key,
                self.meta_key,
                *next_keys,
                self.journal_key,
            ]
            swap_args = [
                self.max_kicks,
                random.getrandbits(31),
                int(JOURNAL_MARGIN * 1000),
                JOURNAL_LENGTH,
            ]
            swapped, replayed, saturated = self._run("swap", _SWAP, swap_keys, swap_args)
            if not swapped:
                raise CacheUnavailable(f"filter {self.name}: the filter being built vanished")
        info = self.info()
        if info is None:
            raise CacheUnavailable(f"filter {self.name}: missing right after its rebuild")
        if saturated or failed:
            logger.error(
                "cuckoo filter %s rebuilt saturated (%d ids did not fit): it answers 'maybe' "
                "for every id until rebuilt with a larger capacity",
                self.name,
                failed,
            )
        else:
            logger.info(
                "cuckoo filter %s rebuilt: %d ids (%d replayed from the journal), %d buckets",
                self.name,
                info.count,
                replayed,
                info.buckets,
            )
        return info

    def drop(self) -> None:
        """Delete the filter and everything around it (tests; retiring a filter)."""
        keys = [
            self.buckets_key,
            self.meta_key,
            self.journal_key,
            self.next_buckets_key,
            self.next_meta_key,
        ]
        call("cuckoo drop", self.meta_key, lambda c: c.delete(*keys), client=self._client)

    # -- using -----------------------------------------------------------------------

    def add(self, item: Item) -> bool:
        """Add one id. False if it was not stored (the filter is full or does not exist)."""
        return self.add_many([item])[0]

    def add_many(self, items: Sequence[Item]) -> list[bool]:
        """Add ids in batches; one bool per id as for `add`. Raises `CacheUnavailable`."""
        out: list[bool] = []
        keys = [self.buckets_key, self.meta_key, self.journal_key]
        for batch in _batches(items, BATCH):
            args = [self.max_kicks, random.getrandbits(31), JOURNAL_LENGTH, *_pairs(batch)]
            result = self._run("add", _ADD, keys, args)
            out.extend(r == 1 for r in result[1:])
            if result[0] == 1 and 0 in result[1:]:
                logger.error(
                    "cuckoo filter %s is full: marked saturated, it answers 'maybe' for every "
                    "id until rebuilt with a larger capacity",
                    self.name,
                )
        return out

    def might_contain(self, item: Item) -> bool:
        """False only if `item` was definitely never added; True when in doubt."""
        return self.might_contain_many([item])[0]

    def might_contain_many(self, items: Sequence[Item]) -> list[bool]:
        """One answer per id as for `might_contain`; never raises (fails open)."""
        out: list[bool] = []
        keys = [self.buckets_key, self.meta_key]
        for batch in _batches(items, BATCH):
            try:
                result = self._run("check", _CHECK, keys, _pairs(batch))
            except CacheUnavailable:
                result = [0]
            if result[0] == 0:  # no filter, saturated, or unreachable: cannot exclude
                out.extend([True] * len(batch))
            else:
                out.extend(r == 1 for r in result[1:])
        return out

    def delete(self, item: Item) -> bool:
        """Remove one copy of an id that was added; False if none was stored."""
        return self.delete_many([item])[0]

    def delete_many(self, items: Sequence[Item]) -> list[bool]:
        out: list[bool] = []
        keys = [self.buckets_key, self.meta_key]
        for batch in _batches(items, BATCH):
            result = self._run("delete", _DELETE, keys, _pairs(batch))
            if result[0] == 1:
                out.extend(r == 1 for r in result[1:])
            else:
                out.extend([False] * len(batch))
        return out

    def info(self) -> FilterInfo | None:
        """Size and state of the live filter; None if it does not exist."""
        keys = [self.buckets_key, self.meta_key]

        def read(c: RedisCluster) -> list:
            return list(c.hmget(self.meta_key, ["buckets", "capacity", "count", "saturated"]))

        raw = call("cuckoo info", self.meta_key, read, client=self._client)
        if raw[0] is None or not call(
            "cuckoo info", self.meta_key, lambda c: c.exists(keys[0]), client=self._client
        ):
            return None
        buckets, capacity, count, saturated = (int(v or 0) for v in raw)
        return FilterInfo(self.name, buckets, capacity, count, bool(saturated))


def rebuild(
    name: str,
    ids: Iterable[Item],
    *,
    capacity: int | None = None,
    client: RedisCluster | None = None,
    key_prefix: str | None = None,
) -> FilterInfo:
    """Rebuild filter `name` of this service from `ids` (see `CuckooFilter.rebuild`)."""
    cuckoo = CuckooFilter(name, client=client, key_prefix=key_prefix)
    return cuckoo.rebuild(ids, capacity=capacity)
