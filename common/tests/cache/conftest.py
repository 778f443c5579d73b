"""The cache layer against the running six-node cluster, without Django settings.

Every test works under its own key prefix (deleted afterwards), so runs never see each
other's keys. `nodes` stops and starts cluster nodes through supervisord and always
leaves the cluster healthy (six nodes up, three masters with a replica each, state ok).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster, key_slot
from redis.retry import Retry

from common.cache.client import CACHE_ERRORS, breaker, cache_client
from common.cache.local import LocalCache
from common.cache.readthrough import ReadThroughCache
from common.cache.repairs import repairs
from common.topology import INFRA
from deploy.local import paths

RUN = uuid.uuid4().hex[:8]


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it is truthy; False if `timeout` seconds passed first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class FakeTable:
    """The database a loader reads, counting the reads."""

    def __init__(self, rows: dict[int, dict[str, Any]] | None = None, delay: float = 0.0) -> None:
        self.rows = dict(rows or {})
        self.delay = delay
        self.loads = 0
        self._lock = threading.Lock()

    def loader(self, key: int) -> Callable[[], dict[str, Any] | None]:
        def load() -> dict[str, Any] | None:
            with self._lock:
                self.loads += 1
            if self.delay:
                time.sleep(self.delay)
            row = self.rows.get(key)
            return dict(row) if row is not None else None

        return load

    def loader_many(self, keys: list[Any]) -> dict[Any, dict[str, Any]]:
        with self._lock:
            self.loads += 1
        return {k: dict(self.rows[int(k)]) for k in keys if int(k) in self.rows}


def another_process(prefix: str, namespace: str, **kwargs: Any) -> ReadThroughCache:
    """A cache object with a local level of its own, as in a separate process."""
    return ReadThroughCache(namespace, key_prefix=prefix, local=LocalCache(), **kwargs)


class _DeadNode:
    name = "127.0.0.1:1"


class UnreachableCluster:
    """A cluster client whose every command fails as a dead node's would."""

    def get_node_from_key(self, key: object) -> _DeadNode:
        return _DeadNode()

    def __getattr__(self, name: str) -> object:
        def fail(*args: object, **kwargs: object) -> object:
            raise redis.ConnectionError("Connection refused")

        return fail


def unreachable_cluster() -> RedisCluster:
    return cast(RedisCluster, UnreachableCluster())


@pytest.fixture(scope="session")
def cluster() -> RedisCluster:
    return cache_client()


@pytest.fixture
def prefix(cluster: RedisCluster) -> Iterator[str]:
    """A key prefix of this test alone; its keys (and its filters') are deleted after it."""
    value = f"cachetest-{RUN}-{uuid.uuid4().hex[:6]}"
    yield value
    for pattern in (f"{value}:*", f"{{cf:{value}:*"):
        with contextlib.suppress(*CACHE_ERRORS):
            keys = list(cluster.scan_iter(match=pattern, count=1000))
            for key in keys:
                cluster.delete(key)


@pytest.fixture(autouse=True)
def _no_leftover_breakers_or_repairs() -> Iterator[None]:
    """A test that simulated an outage must not leave open breakers or repairs behind."""
    yield
    breaker.reset()
    repairs.clear()


class ClusterNodes:
    """Direct access to the six nodes, and stopping/starting them through supervisord."""

    ports = INFRA.redis_cluster_ports

    def node(self, port: int) -> redis.Redis:
        # No retries: a stopped node must answer "refused" at once, not after backoff.
        return redis.Redis(
            port=port, socket_timeout=2, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
        )

    def _ask(self, port: int, *command: str) -> str | None:
        try:
            reply = self.node(port).execute_command(*command)
        except redis.RedisError:
            return None
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    def cluster_nodes(self) -> list[dict[str, str]]:
        """CLUSTER NODES as seen by the first node that answers."""
        for port in self.ports:
            text = self._ask(port, "CLUSTER", "NODES")
            if text:
                rows = []
                for line in text.strip().splitlines():
                    parts = line.split()
                    rows.append(
                        {
                            "id": parts[0],
                            "port": parts[1].split("@")[0].rsplit(":", 1)[1],
                            "flags": parts[2],
                            "master": parts[3],
                            "slots": " ".join(parts[8:]),
                        }
                    )
                return rows
        raise RuntimeError("no cluster node answers")

    def master_of_slot(self, slot: int) -> int:
        for port in self.ports:
            try:
                slots = self.node(port).execute_command("CLUSTER", "SLOTS")
            except redis.RedisError:
                continue
            for start, end, master, *_ in slots:
                if int(start) <= slot <= int(end):
                    return int(master[1])
        raise RuntimeError(f"no master serves slot {slot}")

    def master_of_key(self, key: str) -> int:
        return self.master_of_slot(key_slot(key.encode()))

    def stop(self, port: int) -> None:
        self._supervisorctl("stop", port)

    def start(self, port: int) -> None:
        self._supervisorctl("start", port)

    def _supervisorctl(self, action: str, port: int) -> None:
        subprocess.run(
            [
                paths.executable("supervisorctl"),
                "-c",
                str(paths.SUPERVISOR_CONF),
                action,
                f"infra:redis-{port}",
            ],
            check=False,  # "already started/stopped" is fine; health is checked separately
            capture_output=True,
            timeout=60,
        )

    def healthy(self) -> bool:
        """Six nodes up and agreeing on state ok, 3 masters each with a synced replica."""
        for port in self.ports:
            info = self._ask(port, "CLUSTER", "INFO")
            if info is None or "cluster_state:ok" not in info:
                return False
        try:
            rows = self.cluster_nodes()
        except RuntimeError:
            return False
        if any("fail" in r["flags"] or "handshake" in r["flags"] for r in rows):
            return False
        masters = [r for r in rows if "master" in r["flags"]]
        replicas = [r for r in rows if "slave" in r["flags"]]
        if (len(masters), len(replicas)) != (3, 3):
            return False
        if {r["master"] for r in replicas} != {m["id"] for m in masters}:
            return False
        for replica in replicas:
            try:
                link = self.node(int(replica["port"])).info("replication")["master_link_status"]
            except (redis.RedisError, KeyError):
                return False
            if link != "up":
                return False
        return True

    def wait_healthy(self, timeout: float = 120.0) -> None:
        if not wait_until(self.healthy, timeout=timeout, interval=0.25):
            raise RuntimeError(f"the cluster is not healthy after {timeout}s")

    def failed_over(self, old_master: int, slot: int) -> bool:
        """A surviving node serves `slot` and the cluster says ok without `old_master`."""
        survivors = [p for p in self.ports if p != old_master]
        info = self._ask(survivors[0], "CLUSTER", "INFO")
        if info is None or "cluster_state:ok" not in info:
            return False
        try:
            return self.master_of_slot(slot) != old_master
        except RuntimeError:
            return False


@pytest.fixture
def nodes() -> Iterator[ClusterNodes]:
    ops = ClusterNodes()
    ops.wait_healthy()
    yield ops
    # Whatever a test stopped is started again, and the test ends on a healthy cluster.
    for port in ops.ports:
        if ops._ask(port, "PING") is None:
            ops.start(port)
    ops.wait_healthy()
