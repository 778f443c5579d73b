"""The six-node cache cluster: the process's one cluster client, for raw commands."""

from __future__ import annotations

from redis.cluster import RedisCluster

from common.cache.client import cache_client


def cluster_client() -> RedisCluster:
    """The process's cluster client: the cache layer's, so a process holds one pool per node.

    Raw commands (health checks, throttling counters) share its short timeouts; callers
    that must survive an outage catch `common.cache.client.CACHE_ERRORS`.
    """
    return cache_client()
