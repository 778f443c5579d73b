"""How far the relay is behind, read from the outbox table when `/metrics` is scraped.

`outbox_backlog_messages`: unpublished rows; `outbox_oldest_unpublished_age_seconds`:
age of the oldest of them (0 when none). One aggregate over the partial index of
unpublished rows, in the process answering the scrape: the table is the truth, whichever
process wrote or published the rows. With the database down the scrape still succeeds,
without these two series (and a warning in the log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

BACKLOG = "outbox_backlog_messages"
OLDEST_AGE = "outbox_oldest_unpublished_age_seconds"

Backlog = tuple[int, datetime | None]
"""(unpublished rows, creation time of the oldest of them)."""


def outbox_backlog() -> Backlog:
    """Unpublished rows and the oldest one's creation time, in one query."""
    from django.db.models import Count, Min

    from common.outbox.models import OutboxMessage

    row = OutboxMessage.objects.filter(published_at__isnull=True).aggregate(
        count=Count("id"), oldest=Min("created_at")
    )
    return int(row["count"]), row["oldest"]


def _now() -> datetime:
    return datetime.now(UTC)


class OutboxBacklogCollector(Collector):
    """The two outbox gauges, computed at each scrape (common.observability.metrics)."""

    def __init__(
        self,
        backlog: Callable[[], Backlog] = outbox_backlog,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self._backlog = backlog
        self._now = now

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        try:
            count, oldest = self._backlog()
        except DatabaseError as exc:
            logger.warning("outbox metrics left out of this scrape: %s", exc)
            return []
        age = max(0.0, (self._now() - oldest).total_seconds()) if oldest is not None else 0.0
        backlog, oldest_age = self._families()
        backlog.add_metric([], count)
        oldest_age.add_metric([], age)
        return [backlog, oldest_age]

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(BACKLOG, "Outbox rows not yet published to Kafka."),
            GaugeMetricFamily(
                OLDEST_AGE, "Seconds since the oldest unpublished outbox row was written."
            ),
        ]
