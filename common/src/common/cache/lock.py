"""A distributed lock on the cluster: redis-py's `Lock` (SET NX PX with a unique token,
token-checked release and extend in its Lua scripts), behind this project's cache rules.

The lock is a single key, so it lives on one master. It gives mutual exclusion for as
long as its TTL while that master is up; it is meant for efficiency (one process loads
a cold key, rebuilds a filter) and never for correctness that a database transaction
must guarantee, so it needs no fencing token (docs/adr/0021). A holder that outlives the
TTL has lost the lock: `release()` and `extend()` then answer False and change nothing,
so a stale holder can never release or prolong somebody else's lock.

What this module adds to redis-py's lock: every command goes through the cache's
breakers (`call`) and a Redis failure is `CacheUnavailable`; release and extend answer
False instead of raising; a blocked `acquire` backs off from 2 ms to 50 ms rather than
sleeping a fixed interval.

One `RedisLock` object is one holder: do not share an instance between threads.
"""

from __future__ import annotations

import secrets
import time
from types import TracebackType

from redis.cluster import RedisCluster
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from common.cache.client import CacheUnavailable, call, config

_POLL_MIN = 0.002
_POLL_MAX = 0.05


class LockNotAcquired(Exception):
    """The lock was held by someone else for longer than we were willing to wait."""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisLock:
    """A lock on `key` (the full Redis key) that expires after `ttl` seconds.

    `acquire()` answers whether we got it; it raises `CacheUnavailable` when the
    cluster cannot tell (the caller decides whether to proceed without the lock).
    `release()` and `extend()` never raise: False means the lock is not (or no longer,
    or not provably) ours.

    As a context manager it waits up to `wait` seconds and raises `LockNotAcquired`
    (or `CacheUnavailable`) when it could not take the lock.
    """

    def __init__(
        self,
        key: str,
        *,
        ttl: float = 5.0,
        wait: float = 10.0,
        client: RedisCluster | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.key = key
        self.ttl = ttl
        self.wait = wait
        self._client = client
        self.token: str | None = None

    def _lock(self, client: RedisCluster, token: str | None) -> Lock:
        """redis-py's lock on our key, bound to the client `call` chose, holding `token`.
        The token lives in this object, not in thread-local storage (one object, one
        holder)."""
        lock = Lock(client, self.key, timeout=_ms(self.ttl) / 1000, thread_local=False)
        lock.local.token = None if token is None else token.encode()
        return lock

    def _try_once(self, token: str) -> bool:
        return bool(
            call(
                "lock acquire",
                self.key,
                lambda c: self._lock(c, None).acquire(blocking=False, token=token),
                client=self._client,
            )
        )

    def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; wait up to `timeout` seconds (forever if None) when blocking."""
        if self.token is not None:
            raise RuntimeError(f"lock {self.key!r} is already held by this object")
        token = secrets.token_hex(16)
        deadline = None if timeout is None else time.monotonic() + timeout
        poll = _POLL_MIN
        while True:
            if self._try_once(token):
                self.token = token
                return True
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return False
            pause = poll if deadline is None else min(poll, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
            poll = min(poll * 2, _POLL_MAX)

    def release(self) -> bool:
        """Release if still ours; False if it expired, was taken over, or Redis is down."""
        token, self.token = self.token, None
        if token is None:
            return False

        def release(client: RedisCluster) -> bool:
            try:
                self._lock(client, token).do_release(token)
            except LockNotOwnedError:  # expired, or another holder's by now
                return False
            return True

        try:
            return call("lock release", self.key, release, client=self._client)
        except CacheUnavailable:
            return False  # it expires on its own

    def extend(self, ttl: float | None = None) -> bool:
        """Set the remaining time to live to `ttl` (default: the lock's ttl) if still ours."""
        token = self.token
        if token is None:
            return False
        seconds = _ms(self.ttl if ttl is None else ttl) / 1000

        def extend(client: RedisCluster) -> bool:
            try:
                return self._lock(client, token).do_extend(seconds, replace_ttl=True)
            except LockNotOwnedError:
                return False

        try:
            return call("lock extend", self.key, extend, client=self._client)
        except CacheUnavailable:
            return False

    def owned(self) -> bool:
        """Whether the key still holds our token (False when Redis cannot tell)."""
        token = self.token
        if token is None:
            return False
        try:
            return call(
                "lock owned", self.key, lambda c: self._lock(c, token).owned(), client=self._client
            )
        except CacheUnavailable:
            return False

    def __enter__(self) -> RedisLock:
        if not self.acquire(blocking=True, timeout=self.wait):
            raise LockNotAcquired(f"lock {self.key!r} not acquired within {self.wait}s")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def named_lock(
    name: str,
    *,
    ttl: float = 5.0,
    wait: float = 10.0,
    client: RedisCluster | None = None,
    key_prefix: str | None = None,
) -> RedisLock:
    """A lock named within this service's key space: `<prefix>:lock:{<name>}`."""
    prefix = key_prefix if key_prefix is not None else config().key_prefix
    return RedisLock(f"{prefix}:lock:{{{name}}}", ttl=ttl, wait=wait, client=client)
