"""The six-node cache cluster: node-list parsing, and the process's one cluster client."""

from __future__ import annotations

from redis.cluster import ClusterNode, RedisCluster


def parse_nodes(spec: str) -> list[ClusterNode]:
    nodes = []
    for item in spec.split(","):
        host, _, port = item.strip().rpartition(":")
        nodes.append(ClusterNode(host, int(port)))
    return nodes


def cluster_client() -> RedisCluster:
    """The process's cluster client: the cache layer's, so a process holds one pool per node.

    Raw commands (health checks, throttling counters) share its short timeouts; callers
    that must survive an outage catch `common.cache.client.CACHE_ERRORS`.
    """
    from common.cache.client import cache_client  # the cache layer imports parse_nodes

    return cache_client()
