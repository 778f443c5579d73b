"""The cache's connection to the cluster, and how a failing cluster is kept out of requests.

- `cache_client()`: one RedisCluster client per process (re-created after a fork), with
  short socket timeouts and a single retry, so a dead or hung node costs at most about a
  second before the caller falls back to its database.
- `call()`: runs one operation against the cluster; any Redis failure becomes
  `CacheUnavailable`, is logged at WARNING at most once per `warning_interval` per kind,
  and opens a per-node breaker: after `breaker_failures` consecutive failures the node
  is skipped (an immediate `CacheUnavailable`) for `breaker_cooldown` seconds, then one
  call is let through to probe it. The other nodes keep serving their slots.

Callers decide what an unavailable cache means for them: a read becomes a miss, a write
is skipped or queued for repair (`common.cache.repairs`), a filter check answers "maybe".
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    ClusterError,
    RedisClusterException,
    RedisError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)
from redis.retry import Retry

from common.cache.config import CacheConfig, current_config

logger = logging.getLogger("common.cache")

T = TypeVar("T")

# Everything redis-py raises when the cluster cannot answer (connection refused or reset,
# timeouts, CLUSTERDOWN, uncovered slots, failed topology refresh) and plain socket errors.
CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError)
# The subset that says "this node is not answering" (as opposed to, say, a script error):
# only these count towards opening a node's breaker.
_NODE_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterError,
    RedisClusterException,
    OSError,
)


class CacheUnavailable(Exception):
    """The cluster (or the node owning a key) could not answer; treat the cache as empty."""


_client_lock = threading.Lock()
_clients: dict[int, RedisCluster] = {}
_config: CacheConfig | None = None


def config() -> CacheConfig:
    """The process's cache configuration (read once)."""
    global _config
    if _config is None:
        _config = current_config()
    return _config


def parse_nodes(spec: str) -> list[ClusterNode]:
    """`host:port,host:port,...` (REDIS_CLUSTER_NODES) as redis-py's startup nodes."""
    nodes = []
    for item in spec.split(","):
        host, _, port = item.strip().rpartition(":")
        nodes.append(ClusterNode(host, int(port)))
    return nodes


def build_client(cfg: CacheConfig) -> RedisCluster:
    """A new cluster client with the cache's timeouts (raises if no node answers)."""
    return RedisCluster(
        startup_nodes=parse_nodes(cfg.nodes),
        socket_timeout=cfg.socket_timeout,
        socket_connect_timeout=cfg.connect_timeout,
        retry=Retry(NoBackoff(), cfg.retries),
        # With cluster-require-full-coverage no, the slots of a live master keep working
        # while another master is down: do not refuse to start in that state.
        require_full_coverage=False,
        decode_responses=False,
        health_check_interval=0,
    )


def cache_client() -> RedisCluster:
    """The process's cache client; raises a Redis error when the cluster is unreachable."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        with _client_lock:
            client = _clients.get(pid)
            if client is None:
                client = build_client(config())
                _clients.clear()  # a parent's client is useless (and unsafe) after fork
                _clients[pid] = client
    return client


class RateLimitedWarnings:
    """At most one WARNING per kind per interval, with the number suppressed meanwhile."""

    def __init__(self, interval: float | None = None) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, kind: str, message: str, *args: object) -> bool:
        interval = self._interval if self._interval is not None else config().warning_interval
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            self._last[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message += " (%d similar warnings suppressed)"
            args = (*args, suppressed)
        logger.warning(message, *args)
        return True


warnings = RateLimitedWarnings()


def degraded(op: str, exc: BaseException) -> None:
    """Log (rate-limited) that a cache operation failed and the caller degraded."""
    warnings.warn(
        f"{op}:{type(exc).__name__}",
        "cache degraded: %s failed (%s: %s); serving without the cache",
        op,
        type(exc).__name__,
        exc,
    )


class NodeBreaker:
    """Skip a node that keeps failing for a short cool-down instead of waiting on it again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}

    def allows(self, node: str) -> bool:
        until = self._open_until.get(node)
        return until is None or time.monotonic() >= until

    def failed(self, node: str) -> None:
        cfg = config()
        with self._lock:
            count = self._failures.get(node, 0) + 1
            self._failures[node] = count
            if count >= cfg.breaker_failures:
                self._open_until[node] = time.monotonic() + cfg.breaker_cooldown

    def succeeded(self, node: str) -> None:
        if node in self._failures or node in self._open_until:
            with self._lock:
                self._failures.pop(node, None)
                self._open_until.pop(node, None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._open_until.clear()


breaker = NodeBreaker()

# Breaker names besides node names: creating the client (no startup node answers), and
# operations whose keys span several nodes (one failing node fails them all).
_CONNECT = "connect"
_MULTI_KEY = "multi-key"


def _node_name(client: RedisCluster, route_key: str | bytes | None) -> str:
    if route_key is None:
        return _MULTI_KEY
    try:
        node = client.get_node_from_key(route_key)
    except CACHE_ERRORS:
        return _MULTI_KEY
    return node.name if node is not None else _MULTI_KEY


_thread_state = threading.local()


@contextmanager
def breaker_bypassed() -> Iterator[None]:
    """Let this thread's calls through open breakers (the repair worker: a repair must
    land as soon as the node answers again, not a cool-down later). Failures and
    successes are still recorded."""
    previous = getattr(_thread_state, "bypass", False)
    _thread_state.bypass = True
    try:
        yield
    finally:
        _thread_state.bypass = previous


def _guarded(op: str, node: str, fn: Callable[[], T]) -> T:
    if not breaker.allows(node) and not getattr(_thread_state, "bypass", False):
        raise CacheUnavailable(f"{op}: cache node {node} failing (cooling down)")
    try:
        result = fn()
    except CACHE_ERRORS as exc:
        if isinstance(exc, _NODE_DOWN_ERRORS):
            breaker.failed(node)
        degraded(op, exc)
        raise CacheUnavailable(f"{op}: {type(exc).__name__}: {exc}") from exc
    breaker.succeeded(node)
    return result


def call(
    op: str,
    route_key: str | bytes | None,
    fn: Callable[[RedisCluster], T],
    *,
    client: RedisCluster | None = None,
) -> T:
    """Run `fn(client)`; a Redis failure is logged and raised as `CacheUnavailable`.

    `route_key` is a key the operation touches (all its keys share one slot): that
    node's breaker guards the call. Operations across slots pass None.
    """
    target = client if client is not None else _guarded(f"{op} (connect)", _CONNECT, cache_client)
    return _guarded(op, _node_name(target, route_key), lambda: fn(target))
