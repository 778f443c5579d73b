"""The read-through cache services code against: local level, cuckoo filter, Redis, lock.

    products = ReadThroughCache("products", filter_name="products")
    product = products.get(product_id, lambda: product_get_or_none(product_id=product_id))

`get` answers from the first level that knows:

1. the process's local level (entries live `local_ttl` <= 1 s);
2. Redis (entries live `ttl`, or `negative_ttl` for "does not exist");
3. the cuckoo filter, if the cache has one: an id it has never seen is answered None
   without calling the loader (cache penetration);
4. the loader, called by one reader per key at a time across all processes (the winner
   of a per-key lock); the others poll Redis for up to `lock_wait` seconds and read what
   the winner stored (cache stampede). A reader that waited longer, or that cannot reach
   Redis, calls the loader itself.

Consistency. A write calls `invalidate(key)` / `invalidate_many(keys)` (or `set(key,
value)`) after its transaction commits: that deletes the Redis entry and the local entry
of the writing process, which therefore reads its own write at once. Without
`broadcast`, every other process reads it within `local_ttl` (<= 1 s), the lifetime of
its local entry. With `broadcast=True` the write also publishes the keys (one message
per call) and every process's listener drops them from its local level as the message
arrives (`common.cache.invalidation`); `local_ttl` remains the bound only for a process
whose subscription was down when the message went out. Each key has a generation counter in Redis,
bumped by every write; a loader's result is stored only if the generation has not moved
since the load began, so a slow reader cannot put a value older than a write back into
the cache afterwards.

Outages. No Redis error ever reaches the caller: a read falls back to the loader (the
database), a write's invalidation that cannot reach its node is retried in the
background (`common.cache.repairs`) until it lands or the old value would have expired,
and a filter that cannot be asked answers "maybe". Slower, never wrong.

Metrics. `cache_requests_total{cache,result}` counts each key read by the level that
answered it: `hit_local`, `hit` (Redis), `filtered` (the cuckoo filter said it does not
exist) or `miss` (the loader's turn; a reader that then finds the winner's value in
Redis still counts as a miss).

Values are JSON: dicts (or lists, strings, numbers) that survive `json.dumps`. A hit and
a miss answer the same thing because both answer the JSON round trip of what the loader
returned (tuples become lists, dict keys strings); a value JSON cannot encode raises
TypeError, a bug to fix in the caller, not an outage.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from typing import Any, TypeVar, cast

from redis.cluster import RedisCluster

from common.cache.client import CacheUnavailable, call, config
from common.cache.cuckoo import CuckooFilter
from common.cache.invalidation import InvalidationListener, channel_name, publish, shared_listener
from common.cache.local import LocalCache, shared_local_cache
from common.cache.lock import RedisLock
from common.cache.repairs import repairs
from common.cache.scripts import LuaScript
from common.observability.metrics import counter

T = TypeVar("T")
Key = str | int

MAX_LOCAL_TTL = 1.0  # the cross-process staleness bound this layer promises
# Longer than any load: a write's generation outlives every load that began before it.
GENERATION_TTL = 3600.0
FILTER_ADD_REPAIR_WINDOW = 3600.0
_NEGATIVE = b"null"
_POLL_MIN = 0.002
_POLL_MAX = 0.025

CACHE_REQUESTS = counter(
    "cache_requests",
    "Keys read through a cache, by cache namespace and the level that answered.",
    ["cache", "result"],
)
RESULTS = ("hit_local", "hit", "miss", "filtered")

_STORE = LuaScript.from_files("rt_store.lua")
_WRITE = LuaScript.from_files("rt_write.lua")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _encode(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cache values must be JSON-serialisable: {exc}") from exc


class ReadThroughCache:
    """A namespace of cached values (see the module docstring)."""

    def __init__(
        self,
        namespace: str,
        *,
        ttl: float = 300,
        local_ttl: float = 1.0,
        negative_ttl: float = 30,
        filter_name: str | None = None,
        lock_ttl: float = 5.0,
        lock_wait: float = 2.0,
        client: RedisCluster | None = None,
        local: LocalCache | None = None,
        key_prefix: str | None = None,
        broadcast: bool = False,
    ) -> None:
        """`client`, `local` and `key_prefix` default to the process's cluster client, the
        process's local level for this namespace and the service's prefix; tests pass
        their own `local` to simulate another process (it then gets a listener of its
        own). `broadcast` sends invalidations to every process's local level."""
        if not 0 <= local_ttl <= MAX_LOCAL_TTL:
            raise ValueError(f"local_ttl must be between 0 and {MAX_LOCAL_TTL} seconds")
        if ttl <= 0 or negative_ttl < 0 or lock_ttl <= 0 or lock_wait < 0:
            raise ValueError("ttl and lock_ttl must be positive, negative_ttl and lock_wait >= 0")
        prefix = key_prefix if key_prefix is not None else config().key_prefix
        self.namespace = namespace
        self.ttl = ttl
        self.local_ttl = local_ttl
        self.negative_ttl = negative_ttl
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self._prefix = prefix
        self._client = client
        # (`is None`, not `or`: an empty LocalCache is falsy)
        self._local = (
            local
            if local is not None
            else shared_local_cache(f"{prefix}:{namespace}", max_entries=config().local_max_entries)
        )
        self.listener: InvalidationListener | None = None
        if broadcast:
            channel = channel_name(prefix, namespace)
            if local is None:
                self.listener = shared_listener(channel, self._local, client=client)
            else:
                self.listener = InvalidationListener(channel, local, client=client)
                self.listener.ensure_running()
        self.filter = (
            CuckooFilter(filter_name, client=client, key_prefix=prefix) if filter_name else None
        )
        # One child per result, made up front: a counter lookup per read stays cheap and
        # every series exists (at 0) from the start.
        self._requests = {result: CACHE_REQUESTS.labels(namespace, result) for result in RESULTS}

    # -- reading ---------------------------------------------------------------------

    def get(self, key: Key, loader: Callable[[], T | None]) -> T | None:
        """The value for `key`, loading it with `loader` (None = does not exist) on a miss."""
        skey = str(key)
        if self.listener is not None:
            self.listener.ensure_running()
        payload = self._local.get(skey)
        if payload is not None:
            self._count("hit_local")
            return cast("T | None", json.loads(payload))
        epoch = self._local.epoch()
        vkey = self._keys(skey)[0]
        if self._write_pending(vkey):
            # This process wrote the key while its node was unreachable; until that
            # invalidation lands, Redis (or a promoted replica) may hold the old value.
            self._count("miss")
            return self._load_uncached(skey, loader, epoch)
        try:
            raw = self._call("get", vkey, lambda c: c.get(vkey))
        except CacheUnavailable:
            if self._filter_rejects(skey):
                self._count("filtered")
                return None
            self._count("miss")
            return self._load_uncached(skey, loader, epoch)
        if raw is not None:
            self._count("hit")
            return self._hit(skey, raw, epoch)
        if self._filter_rejects(skey):
            self._count("filtered")
            return None
        self._count("miss")
        return self._load_once(skey, loader, epoch)

    def get_many(
        self, keys: Iterable[Key], loader_many: Callable[[list[Key]], Mapping[Key, T]]
    ) -> dict[Key, T]:
        """Values of the keys that exist, keyed as given; `loader_many(missing_keys)`
        answers a mapping of the ones that exist (keys as given or their str).

        No per-key lock here (a batch would hold many): concurrent cold batches may each
        load. Generations still keep a racing write's value from being overwritten.
        """
        if self.listener is not None:
            self.listener.ensure_running()
        originals: dict[str, Key] = {}
        for key in keys:
            originals.setdefault(str(key), key)
        found: dict[str, Any] = {}
        epoch = self._local.epoch()
        missing: list[str] = []
        for skey in originals:
            payload = self._local.get(skey)
            if payload is None:
                missing.append(skey)
            elif payload != _NEGATIVE:
                found[skey] = json.loads(payload)
        # (key, generation read before loading, whether Redis may be written)
        cold: list[tuple[str, bytes | None, bool]] = []
        pending = {skey for skey in missing if self._write_pending(self._keys(skey)[0])}
        cold.extend((skey, None, False) for skey in missing if skey in pending)
        trusted = [skey for skey in missing if skey not in pending]
        hits = 0
        if trusted:
            flat_keys = [k for skey in trusted for k in self._keys(skey)[:2]]
            try:
                flat = self._call("get_many", None, lambda c: c.mget_nonatomic(flat_keys))
                redis_ok = True
            except CacheUnavailable:
                flat, redis_ok = [None] * len(flat_keys), False
            for i, skey in enumerate(trusted):
                raw, generation = flat[2 * i], flat[2 * i + 1]
                if raw is None:
                    cold.append((skey, generation, redis_ok))
                else:
                    hits += 1
                    value = self._hit(skey, raw, epoch)
                    if value is not None:
                        found[skey] = value
        if cold and self.filter is not None:
            rejected = self._filter_rejects_many([skey for skey, _, _ in cold])
            cold = [entry for entry, no in zip(cold, rejected, strict=True) if not no]
            self._count("filtered", sum(rejected))
        self._count("hit_local", len(originals) - len(missing))
        self._count("hit", hits)
        self._count("miss", len(cold))
        if cold:
            loaded = loader_many([originals[skey] for skey, _, _ in cold])
            by_str = {str(k): v for k, v in loaded.items()}
            for skey, generation, storable in cold:
                payload = _encode(by_str.get(skey))
                value = json.loads(payload)
                if value is not None:
                    found[skey] = value
                if storable:
                    self._store(skey, payload, generation, epoch)
                else:
                    self._local.put(skey, payload, ttl=self._local_ttl(payload), epoch=epoch)
        return {originals[skey]: found[skey] for skey in originals if skey in found}

    # -- writing ---------------------------------------------------------------------

    def set(self, key: Key, value: Any) -> None:
        """Cache `value` as the current one (after the write that made it committed).

        Prefer `invalidate` when two writers may race: of two sets the later call wins,
        which is not necessarily the later commit.
        """
        skey = str(key)
        payload = _encode(value)
        self._local.delete(skey)
        self._write(skey, payload, self.ttl)
        self._local.put(skey, payload, ttl=self._local_ttl(payload))
        self._broadcast([skey])

    def invalidate(self, key: Key) -> None:
        """Forget `key` in Redis and here (after the write that changed it committed)."""
        self.invalidate_many([key])

    def invalidate_many(self, keys: Iterable[Key]) -> None:
        """Forget `keys` in Redis and here, and (with `broadcast`) in every other process
        with one message for all of them (after the write that changed them committed)."""
        skeys = list(dict.fromkeys(str(key) for key in keys))
        if not skeys:
            return
        self._local.delete_many(skeys)
        for skey in skeys:
            self._write(skey, b"", 0)
        # After Redis forgot them: a process that drops its entry on this message and
        # reads again cannot find the old value in Redis.
        self._broadcast(skeys)

    def invalidate_on_commit(self, key: Key) -> None:
        """`invalidate(key)` once the current database transaction commits (at once outside
        one). An error then is logged, not raised: the write has committed, and its caller
        must hear success."""
        from django.db import transaction  # (only writers need Django; readers do not)

        transaction.on_commit(lambda: self.invalidate(key), robust=True)

    def filter_add(self, key: Key) -> None:
        """Record that `key` now exists (after the insert committed); also invalidates it,
        so a cached "does not exist" goes away. A failed add is retried in the background."""
        cuckoo = self._require_filter()
        skey = str(key)
        try:
            cuckoo.add(skey)
        except CacheUnavailable:
            repairs.submit(
                self._filter_repair_key(skey),
                lambda: cuckoo.add(skey),
                within=FILTER_ADD_REPAIR_WINDOW,
                what=f"cuckoo filter {cuckoo.name}: add {skey}",
                give_up_is_error=True,
            )
        self.invalidate(key)

    def filter_remove(self, key: Key) -> None:
        """Record that `key` no longer exists (after the delete committed); also invalidates
        it. If the removal cannot reach Redis the id stays a harmless false positive."""
        cuckoo = self._require_filter()
        skey = str(key)
        # An add still waiting for the cluster never got in: removing now could take out
        # another id's identical fingerprint.
        if not repairs.cancel(self._filter_repair_key(skey)):
            with suppress(CacheUnavailable):
                cuckoo.delete(skey)
        self.invalidate(key)

    # -- internals -------------------------------------------------------------------

    def _keys(self, skey: str) -> tuple[str, str, str]:
        # One hash tag per cached key: its value, generation and lock share a slot.
        tag = f"{self._prefix}:{{{self.namespace}:{skey}}}"
        return f"{tag}:v", f"{tag}:g", f"{tag}:lock"

    def _call(self, op: str, route_key: str | None, fn: Callable[[RedisCluster], Any]) -> Any:
        return call(f"cache {self.namespace} {op}", route_key, fn, client=self._client)

    def _broadcast(self, skeys: list[str]) -> None:
        if self.listener is not None:
            publish(self.listener.channel, self.listener.sender, skeys, client=self._client)

    def _count(self, result: str, keys: int = 1) -> None:
        if keys:
            self._requests[result].inc(keys)

    def _local_ttl(self, payload: bytes) -> float:
        return min(self.local_ttl, self.negative_ttl) if payload == _NEGATIVE else self.local_ttl

    def _write_pending(self, vkey: str) -> bool:
        return f"invalidate:{vkey}" in repairs

    def _filter_rejects(self, skey: str) -> bool:
        return self._filter_rejects_many([skey])[0]

    def _filter_rejects_many(self, skeys: list[str]) -> list[bool]:
        """Which ids the filter says were never added (an add of ours still waiting for
        the cluster counts as added)."""
        if self.filter is None:
            return [False] * len(skeys)
        maybe = self.filter.might_contain_many(skeys)
        return [
            not present and self._filter_repair_key(skey) not in repairs
            for skey, present in zip(skeys, maybe, strict=True)
        ]

    def _require_filter(self) -> CuckooFilter:
        if self.filter is None:
            raise ValueError(f"cache {self.namespace!r} has no filter_name")
        return self.filter

    def _filter_repair_key(self, skey: str) -> str:
        assert self.filter is not None
        return f"cuckoo-add:{self.filter.meta_key}:{skey}"

    def _hit(self, skey: str, raw: bytes, epoch: int) -> Any:
        value = json.loads(raw)
        self._local.put(skey, raw, ttl=self._local_ttl(raw), epoch=epoch)
        return value

    def _load(self, loader: Callable[[], T | None]) -> tuple[T | None, bytes]:
        payload = _encode(loader())
        return cast("T | None", json.loads(payload)), payload

    def _load_uncached(self, skey: str, loader: Callable[[], T | None], epoch: int) -> T | None:
        value, payload = self._load(loader)
        self._local.put(skey, payload, ttl=self._local_ttl(payload), epoch=epoch)
        return value

    def _load_once(self, skey: str, loader: Callable[[], T | None], epoch: int) -> T | None:
        vkey, gkey, lkey = self._keys(skey)
        lock = RedisLock(lkey, ttl=self.lock_ttl, client=self._client)
        deadline = time.monotonic() + self.lock_wait
        poll = _POLL_MIN
        while True:
            try:
                won = lock.acquire(blocking=False)
            except CacheUnavailable:
                return self._load_uncached(skey, loader, epoch)
            if won:
                try:
                    return self._load_and_store(skey, loader, epoch)
                finally:
                    lock.release()
            if time.monotonic() >= deadline:
                return self._load_uncached(skey, loader, epoch)
            time.sleep(poll)
            poll = min(poll * 2, _POLL_MAX)
            try:
                raw = self._call("get", vkey, lambda c: c.get(vkey))
            except CacheUnavailable:
                return self._load_uncached(skey, loader, epoch)
            if raw is not None:
                return cast("T | None", self._hit(skey, raw, epoch))

    def _load_and_store(self, skey: str, loader: Callable[[], T | None], epoch: int) -> T | None:
        vkey, gkey, _ = self._keys(skey)
        try:
            raw, generation = self._call("get", vkey, lambda c: c.mget(vkey, gkey))
        except CacheUnavailable:
            return self._load_uncached(skey, loader, epoch)
        if raw is not None:  # stored by the previous lock holder
            return cast("T | None", self._hit(skey, raw, epoch))
        value, payload = self._load(loader)
        self._store(skey, payload, generation, epoch)
        return value

    def _store(self, skey: str, payload: bytes, generation: bytes | None, epoch: int) -> None:
        """Store a loaded value unless a write moved the key's generation since the load."""
        ttl = self.ttl if payload != _NEGATIVE else self.negative_ttl
        if ttl <= 0:
            return
        vkey, gkey, _ = self._keys(skey)
        args: list[bytes | int] = [generation or b"", payload, _ms(ttl * random.uniform(0.9, 1.0))]
        try:
            stored = self._call("store", vkey, lambda c: _STORE(c, [vkey, gkey], args))
        except CacheUnavailable:
            stored = False
        # Not stored because of a racing write: the value may predate that write, so keep
        # it out of the local level too (it is still a fine answer for this one read).
        if stored:
            self._local.put(skey, payload, ttl=self._local_ttl(payload), epoch=epoch)

    def _write(self, skey: str, payload: bytes, ttl: float) -> None:
        vkey, gkey, _ = self._keys(skey)
        generation_ttl = _ms(GENERATION_TTL)
        args: list[bytes | int] = [generation_ttl, payload, _ms(ttl) if payload else 0]

        def write() -> None:
            self._call("write", vkey, lambda c: _WRITE(c, [vkey, gkey], args))

        def invalidate_later() -> None:
            self._call("write", vkey, lambda c: _WRITE(c, [vkey, gkey], [generation_ttl, b"", 0]))

        try:
            write()
            repairs.cancel(f"invalidate:{vkey}")  # this write subsumes an older pending one
        except CacheUnavailable:
            # The node is down or failing over. Its replica may still hold the old value
            # when promoted: delete it once the cluster answers again. An invalidation
            # (not the value itself) is retried, since a later write may have overtaken
            # this one by then.
            repairs.submit(
                f"invalidate:{vkey}",
                invalidate_later,
                within=max(self.ttl, self.negative_ttl) + 1.0,
                what=f"cache {self.namespace}: invalidate {skey}",
            )


@functools.cache
def process_cache(
    namespace: str, filter_name: str | None = None, *, broadcast: bool = False
) -> ReadThroughCache:
    """This process's one ReadThroughCache of `namespace` (with its cuckoo filter, if
    named; broadcasting its invalidations, if asked), built on first use. Services name
    theirs by settings, so tests can use names of their own."""
    return ReadThroughCache(namespace, filter_name=filter_name, broadcast=broadcast)
