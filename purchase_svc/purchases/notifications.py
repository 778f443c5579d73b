"""Wake-ups for purchase event streams: one LISTEN connection per process, fanned out.

`purchase_step_record` sends `pg_notify('purchase_events', <purchase id>)` in the
transaction that records a step (`purchase_steps_record`, one per purchase with a new
step of its batch); PostgreSQL delivers it at commit. Rather than a
database connection per open stream, each process keeps one listener thread with
its own psycopg2 connection (started on the first subscription), which sets the
`threading.Event` of every stream subscribed to that purchase.

A notification only says "look again": streams always re-read the database, so a
lost or extra notification costs a query, never a step. While the listener is not
connected (database restarting, say) `listening` is False and streams poll on a
short interval instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
from django.db import DEFAULT_DB_ALIAS

from common.postgresql import own_connection
from purchase_svc.purchases.services import EVENTS_CHANNEL

logger = logging.getLogger(__name__)

_SELECT_SECONDS = 1.0
_RECONNECT_SECONDS = (0.5, 5.0)  # first and longest pause between connection attempts


class Subscription:
    """A stream's interest in one purchase; `wait()` returns early on its notifications."""

    def __init__(self, hub: PurchaseEventHub, purchase_id: str) -> None:
        self.hub = hub
        self.purchase_id = purchase_id
        self._event = threading.Event()

    def notify(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Block until notified or `timeout`; answer whether notified. Clears the flag."""
        notified = self._event.wait(timeout)
        self._event.clear()
        return notified


class PurchaseEventHub:
    """The process's listener on `purchase_events` and the streams waiting on it."""

    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self._using = using
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.listening = False

    @contextlib.contextmanager
    def subscribe(self, purchase_id: str) -> Iterator[Subscription]:
        """Subscribe to a purchase's notifications for the duration of the block."""
        subscription = Subscription(self, str(purchase_id))
        with self._lock:
            self._subscriptions.setdefault(subscription.purchase_id, set()).add(subscription)
            self._ensure_thread()
        try:
            yield subscription
        finally:
            with self._lock:
                waiting = self._subscriptions.get(subscription.purchase_id)
                if waiting is not None:
                    waiting.discard(subscription)
                    if not waiting:
                        del self._subscriptions[subscription.purchase_id]

    def wait_until_listening(self, timeout: float) -> bool:
        """For tests and start-up: wait until the listener has issued LISTEN."""
        deadline = time.monotonic() + timeout
        while not self.listening and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.listening

    def stop(self) -> None:
        """Stop the listener thread (tests); a later subscription starts a new one."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        self._thread = None
        self._stop = threading.Event()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="purchase-event-listener", daemon=True
            )
            self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        pause = _RECONNECT_SECONDS[0]
        while not stop.is_set():
            conn = None
            try:
                conn = own_connection(self._using)
                with conn.cursor() as cursor:
                    cursor.execute(f"LISTEN {EVENTS_CHANNEL}")
                self.listening = True
                # Streams may have missed a notification while nobody listened.
                self._wake_all()
                pause = _RECONNECT_SECONDS[0]
                self._listen(conn, stop)
            except (psycopg2.Error, OSError, ValueError) as exc:
                logger.warning("purchase event listener: %s; streams poll meanwhile", exc)
            finally:
                self.listening = False
                if conn is not None:
                    with contextlib.suppress(psycopg2.Error):
                        conn.close()
            self._wake_all()
            stop.wait(pause)
            pause = min(pause * 2, _RECONNECT_SECONDS[1])

    def _listen(self, conn: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            ready, _, _ = select.select([conn], [], [], _SELECT_SECONDS)
            if not ready:
                continue
            conn.poll()
            purchase_ids = {n.payload for n in conn.notifies}
            conn.notifies.clear()
            for purchase_id in purchase_ids:
                self._wake(purchase_id)

    def _wake(self, purchase_id: str) -> None:
        with self._lock:
            waiting = list(self._subscriptions.get(purchase_id, ()))
        for subscription in waiting:
            subscription.notify()

    def _wake_all(self) -> None:
        with self._lock:
            waiting = [s for subs in self._subscriptions.values() for s in subs]
        for subscription in waiting:
            subscription.notify()


_hub: tuple[int, PurchaseEventHub] | None = None
_hub_lock = threading.Lock()


def hub() -> PurchaseEventHub:
    """This process's hub (a new one after a fork: threads and connections do not survive it)."""
    global _hub
    with _hub_lock:
        if _hub is None or _hub[0] != os.getpid():
            _hub = (os.getpid(), PurchaseEventHub())
        return _hub[1]
