"""The cache layer every service uses, on the six-node Redis Cluster.

- `ReadThroughCache`: the two-level read-through cache (in-process + cluster) with a
  cuckoo filter against penetration and a per-key lock against stampedes. Start here;
  `process_cache(namespace)` is the process's one instance of a namespace.
- `CuckooFilter` / `rebuild`: the filter on plain Redis commands (Lua, no module).
- `RedisLock` / `named_lock`: a distributed lock with a token-checked release.
- `cache_client`: the process's cluster client with short timeouts.
- `CACHES["default"]` (from `common.settings.build`): django-redis on the same client
  (`common.cache.backend`), for Django's own cache users.

An outage of the cluster, or of one master while it fails over, makes everything here
slower and never wrong; see docs/adr/0004-cache-layer.md.
"""

from common.cache.client import CacheUnavailable, cache_client
from common.cache.cuckoo import FALSE_POSITIVE_BOUND, CuckooFilter, FilterInfo, rebuild
from common.cache.local import LocalCache
from common.cache.lock import LockNotAcquired, RedisLock, named_lock
from common.cache.readthrough import ReadThroughCache, process_cache
from common.cache.repairs import repairs

__all__ = [
    "FALSE_POSITIVE_BOUND",
    "CacheUnavailable",
    "CuckooFilter",
    "FilterInfo",
    "LocalCache",
    "LockNotAcquired",
    "ReadThroughCache",
    "RedisLock",
    "cache_client",
    "named_lock",
    "process_cache",
    "rebuild",
    "repairs",
]
