"""Invalidations broadcast to every process's local level: one sharded pub/sub channel
per cache namespace.

A write deletes the Redis entry and its own process's local entry; other processes
would keep theirs until it expires (`local_ttl`). With broadcasting on, the writer also
publishes the keys it invalidated, one message per batch (`SPUBLISH`, so the message
stays on the one shard owning the channel's slot), and every process runs an
`InvalidationListener`: a daemon thread subscribed with `SSUBSCRIBE` to that shard's
master, which drops the named keys from its local level as messages arrive.

Pub/sub is at-most-once: a subscriber that is disconnected misses messages. So the
listener drops its whole local level whenever its subscription is (re)confirmed and
whenever it notices the connection failed, and it pings the node every `ping_interval`
to notice a connection that died silently. Until it notices, a missed invalidation
leaves an entry stale for at most its remaining lifetime, `local_ttl` (<= 1 s): the bound
the cache had before broadcasting (docs/adr/0004-cache-layer.md).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from contextlib import suppress

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.cluster import RedisCluster
from redis.retry import Retry

from common.cache.client import CACHE_ERRORS, CacheUnavailable, cache_client, call, config, degraded
from common.cache.local import LocalCache

logger = logging.getLogger("common.cache")

DEFAULT_PING_INTERVAL = 1.0
DEFAULT_RETRY_INTERVAL = 0.25


def channel_name(prefix: str, namespace: str) -> str:
    """The namespace's invalidation channel (its hash tag decides the owning shard)."""
    return f"{{{prefix}:{namespace}}}:invalidations"


def encode_message(sender: str, keys: list[str]) -> bytes:
    return json.dumps({"from": sender, "keys": keys}, separators=(",", ":")).encode()


def publish(channel: str, sender: str, keys: list[str], *, client: RedisCluster | None) -> bool:
    """Announce that `keys` were invalidated (after Redis forgot them); False if the
    cluster could not take the message (then other processes hold their entries for at
    most `local_ttl`)."""
    if not keys:
        return True
    payload = encode_message(sender, keys)
    try:
        call("publish", channel, lambda c: c.spublish(channel, payload), client=client)
    except CacheUnavailable:
        return False
    return True


class InvalidationListener:
    """Keeps one local level subscribed to its namespace's invalidation channel."""

    def __init__(
        self,
        channel: str,
        local: LocalCache,
        *,
        client: RedisCluster | None = None,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
    ) -> None:
        self.channel = channel
        self.local = local
        self.ping_interval = ping_interval
        self.retry_interval = retry_interval
        # Messages of this sender are skipped: the writer already dropped its own entries.
        self.sender = uuid.uuid4().hex
        self.subscribed = threading.Event()
        self.subscriptions = 0  # confirmed (re)subscriptions, for tests and logs
        self.applied = 0  # messages applied
        self._client = client
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._pubsub: PubSub | None = None

    # -- lifecycle -------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Start the listening thread if this process has none (first use, after a fork)."""
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # forked: new identity, the parent's thread is gone
                self._pid, self._thread, self._pubsub = os.getpid(), None, None
                self.sender = uuid.uuid4().hex
                self.subscribed.clear()
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"cache-invalidations {self.channel}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening (tests, shutdown)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)  # it sees the flag within one poll (<= 0.5 s)
        self._close()
        self.subscribed.clear()

    @property
    def client_name(self) -> str:
        """The name of the subscribing connection on the node (CLIENT LIST shows it)."""
        return f"cache-invalidations-{self.sender}"

    # -- applying --------------------------------------------------------------------

    def apply(self, payload: bytes) -> None:
        """Drop the keys a message names from the local level (unless we sent it)."""
        try:
            message = json.loads(payload)
            sender, keys = message["from"], message["keys"]
        except (ValueError, KeyError, TypeError):
            logger.warning("cache invalidation: unreadable message on %s", self.channel)
            self.local.clear()  # cannot tell what it meant: assume everything changed
            return
        if sender != self.sender:
            self.local.delete_many(str(key) for key in keys)
            self.applied += 1

    def _reset(self) -> None:
        # Whatever was published while we were not listening is unknown: forget it all.
        self.local.clear()

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except CACHE_ERRORS as exc:
                if not self._stop.is_set():
                    degraded(f"cache invalidations {self.channel}", exc)
            except Exception:  # a bug must not end invalidations for the process's life
                logger.exception("cache invalidation listener failed on %s", self.channel)
            self.subscribed.clear()
            self._reset()
            self._close()
            if not self._stop.wait(self.retry_interval):
                self._refresh_topology()

    def _listen(self) -> None:
        pubsub = self._connect()
        pubsub.ssubscribe(self.channel)
        last_heard = time.monotonic()
        last_ping = last_heard
        dead_after = self.ping_interval + config().socket_timeout
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=min(self.ping_interval, 0.5))
            now = time.monotonic()
            if message is not None:
                last_heard = now
                self._handle(message)
            elif now - last_heard > dead_after:
                raise redis.ConnectionError(f"no answer from {self.channel}'s node")
            if now - last_ping >= self.ping_interval:
                pubsub.ping()
                last_ping = now

    def _handle(self, message: dict) -> None:
        kind = message["type"]
        if kind == "smessage":
            self.apply(message["data"])
        elif kind == "ssubscribe":
            self._reset()
            self.subscriptions += 1
            self.subscribed.set()
        elif kind == "sunsubscribe":
            # The server moved the channel's slot (failover, resharding): follow it.
            raise redis.ConnectionError(f"{self.channel} moved to another node")

    def _connect(self) -> PubSub:
        """A pub/sub connection to the master that owns the channel's slot now."""
        cluster = self._client if self._client is not None else cache_client()
        node = cluster.get_node_from_key(self.channel)
        if node is None:
            raise redis.ConnectionError(f"no node serves {self.channel}")
        cfg = config()
        conn = redis.Redis(
            host=node.host,
            port=node.port,
            socket_timeout=cfg.socket_timeout,
            socket_connect_timeout=cfg.connect_timeout,
            # No silent reconnect: a lost connection may have lost messages, and the
            # loop above must see it to clear the local level.
            retry=Retry(NoBackoff(), 0),
            client_name=self.client_name,
        )
        self._pubsub = conn.pubsub()
        return self._pubsub

    def _refresh_topology(self) -> None:
        # After a failover the channel's slot has a new master: learn it before retrying.
        with suppress(*CACHE_ERRORS):
            cluster = self._client if self._client is not None else cache_client()
            cluster.nodes_manager.initialize()

    def _close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with suppress(*CACHE_ERRORS):
                pubsub.close()


_registry_lock = threading.Lock()
_registry: dict[str, InvalidationListener] = {}


def shared_listener(
    channel: str, local: LocalCache, *, client: RedisCluster | None = None
) -> InvalidationListener:
    """The process's listener of `channel` (one per shared local level), started."""
    with _registry_lock:
        listener = _registry.get(channel)
        if listener is None:
            listener = _registry[channel] = InvalidationListener(channel, local, client=client)
    listener.ensure_running()
    return listener
