"""Following the run's purchases in the purchase service's database (read-only).

One query on one held connection per look, instead of requests through the edge: the
figures per saga count what the stack spends on purchases, and a tracker asking the
API every second (a request per customer) would add its own requests to them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg2

from common.testing import connect

PENDING = "PENDING"  # the one state that is not final (common.contract.events.PurchaseStatus)
# A database restart is a fault the bench may be measuring: it waits this long for
# PostgreSQL to come back before it gives up following the run.
RECONNECT_WITHIN_SECONDS = 120.0


class PurchaseStates:
    """Counts and final moments of purchases, read as the purchase service's role."""

    def __init__(self) -> None:
        self._connection = self._connect()

    @staticmethod
    def _connect() -> Any:
        connection = connect("purchase")
        connection.set_session(readonly=True, autocommit=True)
        return connection

    def close(self) -> None:
        self._connection.close()

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of one read; across a PostgreSQL restart, on a new connection."""
        deadline = time.monotonic() + RECONNECT_WITHIN_SECONDS
        while True:
            try:
                if self._connection.closed:
                    self._connection = self._connect()
                with self._connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    return list(cursor.fetchall())
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                if time.monotonic() >= deadline:
                    raise
                self._connection.close()
                time.sleep(0.5)

    def pending(self, customer_ids: Iterable[int]) -> int:
        """Purchases of these customers not final yet."""
        rows = self._rows(
            "SELECT count(*) FROM purchase WHERE customer_id = ANY(%s) AND status = %s",
            [list(customer_ids), PENDING],
        )
        return int(rows[0][0]) if rows else 0

    def ids(self, customer_ids: Iterable[int]) -> list[str]:
        """The ids of these customers' purchases so far."""
        rows = self._rows(
            "SELECT id::text FROM purchase WHERE customer_id = ANY(%s)", [list(customer_ids)]
        )
        return [str(row[0]) for row in rows]

    def others(self, customer_ids: Iterable[int], since: float, until: float) -> int:
        """Purchases of other customers created between two moments (epoch seconds): a
        sign that something else drove the stack while the bench measured it."""
        rows = self._rows(
            "SELECT count(*) FROM purchase WHERE NOT customer_id = ANY(%s)"
            " AND created_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
            [list(customer_ids), since, until],
        )
        return int(rows[0][0]) if rows else 0

    def finals(self, ids: Iterable[str]) -> dict[str, tuple[str, float]]:
        """{purchase id: (status, epoch seconds of its final state)} of the final ones."""
        rows = self._rows(
            "SELECT id::text, status, extract(epoch FROM updated_at)::float8 FROM purchase"
            " WHERE id = ANY(%s::uuid[]) AND status <> %s",
            [list(ids), PENDING],
        )
        return {pid: (status, float(at)) for pid, status, at in rows}

    async def wait_final(
        self, ids: list[str], *, timeout: float, interval: float
    ) -> dict[str, tuple[str, float]]:
        """Look every `interval` seconds until every one of `ids` is final or `timeout`
        passed; the final ones at the last look."""
        deadline = time.time() + timeout
        while True:
            found = await asyncio.to_thread(self.finals, ids)
            if len(found) == len(ids) or time.time() >= deadline:
                return found
            await asyncio.sleep(interval)
