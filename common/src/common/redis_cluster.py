"""One long-lived Redis Cluster client per process for the six-node cache cluster."""

from __future__ import annotations

import os
import threading

from redis.cluster import ClusterNode, RedisCluster

from common.topology import INFRA

_lock = threading.Lock()
_clients: dict[int, RedisCluster] = {}


def parse_nodes(spec: str) -> list[ClusterNode]:
    nodes = []
    for item in spec.split(","):
        host, _, port = item.strip().rpartition(":")
        nodes.append(ClusterNode(host, int(port)))
    return nodes


def cluster_client() -> RedisCluster:
    """The process's cluster client (re-created after fork: sockets are not shareable)."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        with _lock:
            client = _clients.get(pid)
            if client is None:
                client = RedisCluster(
                    startup_nodes=parse_nodes(INFRA.redis_cluster_nodes),
                    socket_timeout=1.0,
                    socket_connect_timeout=1.0,
                    decode_responses=False,
                )
                _clients.clear()
                _clients[pid] = client
    return client
