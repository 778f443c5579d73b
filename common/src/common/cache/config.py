"""How the cache layer is configured: environment variables with working local defaults.

A Django service gets these as settings (`cache_settings()` is what `common.settings.build`
merges in); code without Django settings (scripts, the platform tests) reads the same
variables directly, so both see the same cluster, prefix and timeouts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from common.topology import INFRA

# Short on purpose: a dead or hung node must turn into a cache miss quickly, not into
# a slow request. Localhost answers in well under a millisecond.
DEFAULT_SOCKET_TIMEOUT = 0.5
DEFAULT_CONNECT_TIMEOUT = 0.5
# One retry lets the client follow a failover (refresh the slot map, ask the new
# master); more would only make an outage slower.
DEFAULT_RETRIES = 1
# After this many consecutive failures a node is skipped for `breaker_cooldown` seconds.
DEFAULT_BREAKER_FAILURES = 2
DEFAULT_BREAKER_COOLDOWN = 1.0
DEFAULT_LOCAL_MAX_ENTRIES = 10_000
DEFAULT_TIMEOUT = 300.0
# At most one WARNING per kind of failure per this many seconds.
DEFAULT_WARNING_INTERVAL = 10.0


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class CacheConfig:
    nodes: str
    key_prefix: str
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    breaker_failures: int = DEFAULT_BREAKER_FAILURES
    breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN
    local_max_entries: int = DEFAULT_LOCAL_MAX_ENTRIES
    default_timeout: float = DEFAULT_TIMEOUT
    warning_interval: float = DEFAULT_WARNING_INTERVAL

    @classmethod
    def from_env(cls, service: str | None = None) -> CacheConfig:
        """The configuration from the environment; the key prefix defaults to the service."""
        prefix = os.environ.get("CACHE_KEY_PREFIX") or service or os.environ.get("SERVICE_NAME")
        return cls(
            nodes=INFRA.redis_cluster_nodes,
            key_prefix=prefix or "shared",
            socket_timeout=_env_float("CACHE_SOCKET_TIMEOUT", DEFAULT_SOCKET_TIMEOUT),
            connect_timeout=_env_float("CACHE_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
            retries=int(os.environ.get("CACHE_RETRIES", DEFAULT_RETRIES)),
            breaker_failures=int(
                os.environ.get("CACHE_BREAKER_FAILURES", DEFAULT_BREAKER_FAILURES)
            ),
            breaker_cooldown=_env_float("CACHE_BREAKER_COOLDOWN", DEFAULT_BREAKER_COOLDOWN),
            local_max_entries=int(
                os.environ.get("CACHE_LOCAL_MAX_ENTRIES", DEFAULT_LOCAL_MAX_ENTRIES)
            ),
            default_timeout=_env_float("CACHE_DEFAULT_TIMEOUT", DEFAULT_TIMEOUT),
            warning_interval=_env_float("CACHE_WARNING_INTERVAL", DEFAULT_WARNING_INTERVAL),
        )

    def as_settings(self) -> dict[str, Any]:
        """`CACHE_<FIELD>` settings for every field but the nodes (REDIS_CLUSTER_NODES)."""
        return {f"CACHE_{f.name.upper()}": getattr(self, f.name) for f in _SETTING_FIELDS}


_SETTING_FIELDS = [f for f in fields(CacheConfig) if f.name != "nodes"]


def cache_settings(service: str) -> dict[str, Any]:
    """The CACHE_* settings and CACHES of one service (merged by `common.settings.build`).

    `CACHES["default"]` is django-redis on the cluster through the same process-wide
    client as the rest of this package, JSON-serialised, prefixed with the service name.
    """
    config = CacheConfig.from_env(service)
    return {
        **config.as_settings(),
        "CACHES": {
            "default": {
                "BACKEND": "common.cache.backend.ClusterRedisCache",
                "LOCATION": config.nodes,
                "KEY_PREFIX": config.key_prefix,
                "TIMEOUT": config.default_timeout,
                "OPTIONS": {
                    "CLIENT_CLASS": "common.cache.backend.ClusterClient",
                    "CONNECTION_FACTORY": "common.cache.backend.ClusterConnectionFactory",
                    "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
                },
            }
        },
    }


def current_config() -> CacheConfig:
    """Django's CACHE_* settings when a settings module is configured, else the environment."""
    from django.conf import settings

    if settings.configured and hasattr(settings, "CACHE_KEY_PREFIX"):
        values = {
            f.name: getattr(settings, f"CACHE_{f.name.upper()}")
            for f in _SETTING_FIELDS
            if hasattr(settings, f"CACHE_{f.name.upper()}")
        }
        nodes = getattr(settings, "REDIS_CLUSTER_NODES", INFRA.redis_cluster_nodes)
        return CacheConfig(nodes=nodes, **values)
    return CacheConfig.from_env()
