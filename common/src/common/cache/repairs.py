"""Cache writes that failed during an outage, retried until they land or stop mattering.

When a write cannot reach its node (a master is down, the cluster is failing over), the
database change has already committed, so the cache must catch up later or it may
serve an old value once the node (or its promoted replica) is back:

- an invalidation is retried until it succeeds or until the old value would have
  expired anyway (its TTL has passed since the failure);
- a cuckoo filter add is retried for an hour (then an ERROR asks for a rebuild),
  because a missing id would make the filter answer "absent" for a row that exists.

Repairs are keyed (a newer repair of the same key replaces an older one) and run on a
daemon thread that exists only while something is pending. It retries every `interval`
seconds, past the node breakers (a repair must land as soon as the node, or its promoted
replica, answers). Until then the process that wrote knows the repair is pending
(`key in repairs`) and does not trust the cache for that key; other processes may read
the old value until the repair lands. Repairs live in memory: a process that dies loses
them, which is why the filter also has `rebuild()`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.cache.client import CacheUnavailable, breaker_bypassed

logger = logging.getLogger("common.cache")


@dataclass
class _Repair:
    action: Callable[[], object]  # raises CacheUnavailable while the cluster cannot take it
    until: float  # monotonic deadline; after it the repair no longer matters (or gives up)
    what: str
    give_up_is_error: bool


class RepairQueue:
    def __init__(self, *, interval: float = 0.25) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[str, _Repair] = {}
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._idle = threading.Condition(self._lock)

    def submit(
        self,
        key: str,
        action: Callable[[], object],
        *,
        within: float,
        what: str,
        give_up_is_error: bool = False,
    ) -> None:
        """Retry `action` (which raises CacheUnavailable on failure) for `within` seconds."""
        repair = _Repair(action, time.monotonic() + within, what, give_up_is_error)
        with self._lock:
            self._pending[key] = repair
            self._ensure_worker()

    def cancel(self, key: str) -> bool:
        """Drop a pending repair; True if there was one."""
        with self._lock:
            return self._pending.pop(key, None) is not None

    def __contains__(self, key: str) -> bool:
        return key in self._pending

    def clear(self) -> None:
        """Drop every pending repair (tests)."""
        with self._lock:
            self._pending.clear()
            self._idle.notify_all()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is pending (tests, graceful shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, self.interval))
            return True

    def run_once(self) -> None:
        """Try every pending repair once (the worker's loop body)."""
        with self._lock:
            items = list(self._pending.items())
        now = time.monotonic()
        for key, repair in items:
            if now >= repair.until:
                if repair.give_up_is_error:
                    logger.error("cache repair given up: %s", repair.what)
                self._finish(key, repair)
                continue
            try:
                with breaker_bypassed():
                    repair.action()
            except CacheUnavailable:
                continue
            except Exception:  # a bug in a repair must not kill the worker or loop forever
                logger.exception("cache repair failed: %s", repair.what)
            else:
                logger.info("cache repaired after an outage: %s", repair.what)
            self._finish(key, repair)

    def _finish(self, key: str, repair: _Repair) -> None:
        with self._lock:
            if self._pending.get(key) is repair:  # not replaced by a newer submit meanwhile
                del self._pending[key]
            if not self._pending:
                self._idle.notify_all()

    def _ensure_worker(self) -> None:
        # called with self._lock held
        pid = os.getpid()
        if pid != self._pid:  # forked: the parent's thread does not exist here
            self._pid, self._thread = pid, None
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._work, name="cache-repairs", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            time.sleep(self.interval)
            self.run_once()
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return


repairs = RepairQueue()
