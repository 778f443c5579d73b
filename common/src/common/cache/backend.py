"""django-redis on the Redis Cluster: `CACHES["default"]` of every service.

django-redis speaks to one server (or a primary and replicas); these classes make it
use the process's `RedisCluster` client instead (`common.cache.client.cache_client`):

- `ClusterConnectionFactory` hands django-redis that client for any LOCATION;
- `ClusterClient` always uses it (it is per process and safe after a fork), reads many
  keys with one MGET per slot, and clears only this service's keys (never FLUSHDB on a
  cluster shared by six services);
- `ClusterRedisCache` turns every Redis failure of Django's cache API into a miss or a
  skipped write, logged at WARNING at most once per interval: an outage never reaches a
  request. (django-redis extras such as `lock` or `sadd` are not guarded.)
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import wraps
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.exceptions import ImproperlyConfigured
from django_redis.cache import RedisCache
from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted
from django_redis.pool import ConnectionFactory
from redis.cluster import RedisCluster

from common.cache.client import CACHE_ERRORS, cache_client, degraded

F = TypeVar("F", bound=Callable[..., Any])

_ERRORS = (*CACHE_ERRORS, ConnectionInterrupted)


class ClusterConnectionFactory(ConnectionFactory):
    def connect(self, url: str) -> Any:
        return cache_client()

    def disconnect(self, connection: Any) -> None:
        """The process-wide client outlives any one cache object: leave it open."""


class ClusterClient(DefaultClient):
    def get_next_client_index(self, write: bool = True, tried: list[int] | None = None) -> int:
        return 0

    def get_client(self, write: bool = True, tried: list[int] | None = None) -> Any:
        return cache_client()

    def get_client_with_index(
        self, write: bool = True, tried: list[int] | None = None
    ) -> tuple[Any, int]:
        return cache_client(), 0

    def get_many(
        self, keys: Collection[str], version: int | None = None, client: Any = None
    ) -> dict:
        if not keys:
            return {}
        cluster: RedisCluster = client if client is not None else cache_client()
        made = {self.make_key(k, version=version): k for k in keys}
        try:
            values = cluster.mget_nonatomic(list(made))
        except CACHE_ERRORS as exc:
            raise ConnectionInterrupted(connection=cluster) from exc
        return {
            made[nkey]: self.decode(value)
            for nkey, value in zip(made, values, strict=True)
            if value is not None
        }

    def clear(self, client: Any = None) -> None:
        """Delete this cache's keys (`<KEY_PREFIX>:<VERSION>:*`) on every master.

        The cluster is shared by six services and by `ReadThroughCache`, so this never
        sends FLUSHDB.
        """
        if not self._backend.key_prefix:
            raise ImproperlyConfigured("clear() on the cluster needs a KEY_PREFIX")
        cluster: RedisCluster = client if client is not None else cache_client()
        pattern = self.make_pattern("*")
        try:
            batch: list[Any] = []
            for key in cluster.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    cluster.delete(*batch)
                    batch = []
            if batch:
                cluster.delete(*batch)
        except CACHE_ERRORS as exc:
            raise ConnectionInterrupted(connection=cluster) from exc


def _guard(default: Callable[..., Any]) -> Callable[[F], F]:
    """Answer `default(*args, **kwargs)` instead of raising when the cluster fails."""

    def decorate(method: F) -> F:
        @wraps(method)
        def guarded(self: ClusterRedisCache, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except _ERRORS as exc:
                cause = exc.__cause__ if isinstance(exc, ConnectionInterrupted) else exc
                degraded(f"django cache {method.__name__}", cause or exc)
                return default(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def _missing(*args: Any, **kwargs: Any) -> Any:
    raise ValueError("cache unavailable: key treated as missing")


class ClusterRedisCache(RedisCache):
    """django-redis against the cluster; Redis failures never leave it (see module doc)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        # Our guards do the catching and rate-limited logging: let django-redis re-raise.
        self._ignore_exceptions = False
        self._log_ignored_exceptions = False

    @_guard(lambda key, default=None, *a, **kw: default)
    def get(self, key: Any, default: Any = None, version: Any = None, client: Any = None) -> Any:
        return super().get(key, default=default, version=version, client=client)

    @_guard(lambda *a, **kw: False)
    def set(self, *args: Any, **kwargs: Any) -> Any:
        return super().set(*args, **kwargs)

    @_guard(lambda *a, **kw: False)
    def add(self, *args: Any, **kwargs: Any) -> Any:
        return super().add(*args, **kwargs)

    @_guard(lambda *a, **kw: False)
    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return super().delete(*args, **kwargs)

    @_guard(lambda *a, **kw: {})
    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return super().get_many(*args, **kwargs)

    @_guard(lambda data, *a, **kw: list(data))
    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, **kwargs: Any) -> Any:
        super().set_many(data, timeout, **kwargs)
        return []

    @_guard(lambda *a, **kw: None)
    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        return super().delete_many(*args, **kwargs)

    @_guard(lambda *a, **kw: False)
    def has_key(self, *args: Any, **kwargs: Any) -> Any:
        return super().has_key(*args, **kwargs)

    @_guard(lambda *a, **kw: False)
    def touch(self, *args: Any, **kwargs: Any) -> Any:
        return super().touch(*args, **kwargs)

    @_guard(_missing)
    def incr(self, *args: Any, **kwargs: Any) -> Any:
        return super().incr(*args, **kwargs)

    @_guard(_missing)
    def decr(self, *args: Any, **kwargs: Any) -> Any:
        return super().decr(*args, **kwargs)

    @_guard(lambda *a, **kw: None)
    def clear(self) -> Any:
        return super().clear()
