"""A distributed lock on the cluster: SET NX PX with a unique token, token-checked release.

The lock is a single key, so it lives on one master. It gives mutual exclusion for as
long as its TTL while that master is up; it is meant for efficiency (one process loads
a cold key, rebuilds a filter) and never for correctness that a database transaction
must guarantee. A holder that outlives the TTL has lost the lock: `release()` and
`extend()` then answer False and change nothing, so a stale holder can never release
or prolong somebody else's lock.

One `RedisLock` object is one holder: do not share an instance between threads.
"""

from __future__ import annotations

import secrets
import time
from types import TracebackType

from redis.cluster import RedisCluster

from common.cache.client import CacheUnavailable, call, config
from common.cache.scripts import LuaScript

_RELEASE = LuaScript.from_files("lock_release.lua")
_EXTEND = LuaScript.from_files("lock_extend.lua")

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

    def _try_once(self, token: str) -> bool:
        return bool(
            call(
                "lock acquire",
                self.key,
                lambda c: c.set(self.key, token, nx=True, px=_ms(self.ttl)),
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
        try:
            released = call(
                "lock release",
                self.key,
                lambda c: _RELEASE(c, [self.key], [token]),
                client=self._client,
            )
        except CacheUnavailable:
            return False  # it expires on its own
        return bool(released)

    def extend(self, ttl: float | None = None) -> bool:
        """Set the remaining time to live to `ttl` (default: the lock's ttl) if still ours."""
        token = self.token
        if token is None:
            return False
        ms = _ms(self.ttl if ttl is None else ttl)
        try:
            extended = call(
                "lock extend",
                self.key,
                lambda c: _EXTEND(c, [self.key], [token, ms]),
                client=self._client,
            )
        except CacheUnavailable:
            return False
        return bool(extended)

    def owned(self) -> bool:
        """Whether the key still holds our token (False when Redis cannot tell)."""
        token = self.token
        if token is None:
            return False
        try:
            value = call("lock owned", self.key, lambda c: c.get(self.key), client=self._client)
        except CacheUnavailable:
            return False
        if isinstance(value, bytes):
            value = value.decode()
        return value == token

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
