"""The outbox backlog gauges, computed at scrape time: from a stand-in for the query,
and from the real query on SQLite in a fresh interpreter (Django settings are
configured once per process; this suite runs without them)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError
from prometheus_client.core import Metric

from common.outbox.metrics import BACKLOG, OLDEST_AGE, Backlog, OutboxBacklogCollector
from common.testing import run_python_json

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def values(families: Iterable[Metric]) -> dict[str, float]:
    return {s.name: s.value for family in families for s in family.samples}


def collector(backlog: Backlog) -> OutboxBacklogCollector:
    return OutboxBacklogCollector(backlog=lambda: backlog, now=lambda: NOW)


def test_backlog_and_the_age_of_its_oldest_row() -> None:
    seen = values(collector((3, NOW - timedelta(seconds=42))).collect())
    assert seen == {BACKLOG: 3, OLDEST_AGE: 42.0}


def test_an_empty_backlog_is_zero_and_zero_old() -> None:
    assert values(collector((0, None)).collect()) == {BACKLOG: 0, OLDEST_AGE: 0.0}


def test_describe_names_the_gauges_without_asking_the_database() -> None:
    def unreachable() -> Backlog:
        raise AssertionError("describe must not query")

    families = list(OutboxBacklogCollector(backlog=unreachable).describe())
    assert [f.name for f in families] == [BACKLOG, OLDEST_AGE]
    assert values(families) == {}


def test_a_database_outage_leaves_the_gauges_out_instead_of_failing_the_scrape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def down() -> Backlog:
        raise OperationalError("connection refused")

    with caplog.at_level(logging.WARNING, logger="common.outbox.metrics"):
        assert list(OutboxBacklogCollector(backlog=down).collect()) == []
    assert "connection refused" in caplog.text


SQLITE_SERVICE = """
import json
from datetime import timedelta
import django
from django.conf import settings

settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=["common.outbox"],
    USE_TZ=True,
)
django.setup()
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from common.observability.metrics import metrics_registry
from common.outbox.models import OutboxMessage

def scrape():
    text = generate_latest(metrics_registry()).decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("outbox_")
    }

call_command("migrate", verbosity=0)
out = {"empty": scrape()}
for n in range(3):
    OutboxMessage.objects.create(topic="t", key=str(n), payload={})
oldest = OutboxMessage.objects.order_by("id").first()
OutboxMessage.objects.filter(pk=oldest.pk).update(published_at=timezone.now())
second = OutboxMessage.objects.order_by("id")[1]
OutboxMessage.objects.filter(pk=second.pk).update(
    created_at=timezone.now() - timedelta(seconds=30)
)
out["backlog"] = scrape()
with connection.cursor() as cursor:
    cursor.execute("DROP TABLE outbox_message")
out["broken"] = scrape()
print(json.dumps(out))
"""


def test_the_installed_app_exposes_the_backlog_from_its_table() -> None:
    out = run_python_json(SQLITE_SERVICE)

    assert out["empty"] == {BACKLOG: 0, OLDEST_AGE: 0}
    assert out["backlog"][BACKLOG] == 2  # the published row is not backlog
    assert 30 <= out["backlog"][OLDEST_AGE] < 40
    assert out["broken"] == {}  # the query failed; the scrape did not
