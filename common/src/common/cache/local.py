"""The in-process level: a small thread-safe LRU of encoded values with a short lifetime.

It holds what a process read recently for at most its entries' TTL (a second or less),
so that a hot key does not cost a network round trip per read. Without broadcast
invalidations it is the reason another process may read a value up to that TTL old after
a write (with them, `common.cache.invalidation` deletes other processes' entries as
well); the writing process itself deletes its own entry, and the `epoch()` /
`put(..., epoch=)` pair keeps a read that started before a local invalidation from
putting its older value back.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class LocalCache:
    """Key -> (expiry, payload bytes); least recently used entries go first when full."""

    def __init__(
        self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._epoch = 0

    def get(self, key: str) -> bytes | None:
        """The payload if present and not expired, else None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, payload = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return payload

    def epoch(self) -> int:
        """A token to pass to `put`: any invalidation after it makes that put a no-op."""
        return self._epoch

    def put(self, key: str, payload: bytes, *, ttl: float, epoch: int | None = None) -> bool:
        """Keep `payload` for `ttl` seconds; False (nothing stored) if `epoch` is stale."""
        if ttl <= 0:
            return False
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                return False
            self._entries[key] = (self._clock() + ttl, payload)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._epoch += 1

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete several keys under one lock (a broadcast invalidation's batch)."""
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
            self._epoch += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._epoch += 1

    def __len__(self) -> int:
        return len(self._entries)


_shared_lock = threading.Lock()
_shared: dict[str, LocalCache] = {}


def shared_local_cache(name: str, *, max_entries: int) -> LocalCache:
    """The process's local level for one namespace, shared by every cache object using it."""
    with _shared_lock:
        local = _shared.get(name)
        if local is None:
            local = _shared[name] = LocalCache(max_entries=max_entries)
        return local
