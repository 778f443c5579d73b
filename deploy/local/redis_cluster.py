"""The six-node cache cluster: created once, then reused from each node's nodes.conf."""

from __future__ import annotations

import subprocess
import time

from common.topology import INFRA
from deploy.local.console import fail, step


def _cli(port: int, *args: str) -> str:
    result = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=30
    )
    return result.stdout


def cluster_info(port: int) -> dict[str, str]:
    info = {}
    for line in _cli(port, "cluster", "info").splitlines():
        key, _, value = line.strip().partition(":")
        info[key] = value
    return info


def roles() -> tuple[int, int]:
    """(masters, replicas) as the first node sees them."""
    nodes = _cli(INFRA.redis_cluster_ports[0], "cluster", "nodes").splitlines()
    masters = sum(1 for n in nodes if "master" in n.split()[2] and "fail" not in n.split()[2])
    replicas = sum(1 for n in nodes if "slave" in n.split()[2] and "fail" not in n.split()[2])
    return masters, replicas


def ensure_cluster(timeout: float = 60.0) -> None:
    first = INFRA.redis_cluster_ports[0]
    info = cluster_info(first)
    if info.get("cluster_slots_assigned") != "16384":
        step("creating the Redis Cluster: 3 masters, 3 replicas")
        nodes = [f"127.0.0.1:{p}" for p in INFRA.redis_cluster_ports]
        result = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *nodes,
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise fail(f"redis-cli --cluster create failed:\n{result.stdout}\n{result.stderr}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster_info(first).get("cluster_state") == "ok" and roles() == (3, 3):
            step("Redis Cluster: cluster_state ok, 3 masters, 3 replicas")
            return
        time.sleep(0.5)
    raise fail(f"Redis Cluster not ok after {timeout}s: {cluster_info(first)} roles={roles()}")
