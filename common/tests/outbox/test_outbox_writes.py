"""Outbox writes and the relay's statements, against the running platform's PostgreSQL.

Django settings are configured once per process and this suite runs without them, so a
fresh interpreter configures an outbox-only project on a throwaway database of its own
(created with the purchase service's role, migrated, dropped afterwards) and reports what
it saw; the tests below read that report.
"""

from __future__ import annotations

from typing import Any

import pytest

from common.testing import run_python_json

pytestmark = pytest.mark.live

SCENARIOS = """
import contextlib
import json
import select
import time
import uuid

import django
import psycopg2
from django.conf import settings

from common.settings import db_password
from common.topology import INFRA, SERVICES

svc = SERVICES["purchase"]
test_name = f"test_common_outbox_{uuid.uuid4().hex[:8]}"
settings.configure(
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": svc.database,
            "USER": svc.db_role,
            "PASSWORD": db_password("purchase"),
            "HOST": INFRA.pg_host,
            "PORT": str(INFRA.pg_port),
            "TEST": {"NAME": test_name},
        }
    },
    INSTALLED_APPS=["common.outbox"],
    USE_TZ=True,
)
django.setup()

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from common.outbox.models import OutboxMessage
from common.postgresql import own_connection
from common.outbox.relay import publish_batch
from common.outbox.services import (
    OutboxEvent,
    OutboxOutsideTransaction,
    outbox_enqueue,
    outbox_enqueue_many,
)


def count(queries, word):
    return sum(word in q["sql"] for q in queries)


def statements(queries):
    # What a transaction runs besides its own control (Django logs BEGIN and COMMIT too).
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
    return [q["sql"] for q in queries if not q["sql"].startswith(control)]


def events(prefix, n):
    return [OutboxEvent(topic="t", key=f"{prefix}{i}", payload={"i": i}) for i in range(n)]


def delivered(listener):
    # Everything the commits so far delivered on channel outbox.
    time.sleep(0.2)
    select.select([listener], [], [], 0.5)
    listener.poll()
    n = len(listener.notifies)
    listener.notifies.clear()
    return n


class FakePublisher:
    def __init__(self):
        self.sent = []
        self.values = []
        self.headers = {}

    def publish(self, topic, key, value, headers=None):
        self.sent.append(key)
        self.values.append(json.loads(value))
        self.headers[key] = dict(headers)

    def flush(self, timeout=0):
        pass


out = {}
connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
try:
    listener = own_connection()
    with listener.cursor() as cursor:
        cursor.execute("LISTEN outbox")

    # N events: one INSERT, one NOTIFY, ids in the order given.
    with CaptureQueriesContext(connection) as q, transaction.atomic():
        ids = outbox_enqueue_many(events("many-", 5))
    keys_by_id = dict(OutboxMessage.objects.filter(id__in=ids).values_list("id", "key"))
    out["many"] = {
        "inserts": count(q, "INSERT"),
        "notifies": count(q, "pg_notify"),
        # The ids answered, in the order answered, with the key stored under each.
        "returned": [[keys_by_id[row_id], row_id] for row_id in ids],
        "stored_by_id": list(
            OutboxMessage.objects.filter(key__startswith="many-")
            .order_by("id")
            .values_list("key", flat=True)
        ),
        "delivered": delivered(listener),
    }

    # The caller's writes go along: one round trip, run first; also without events;
    # undone by a rollback like the rest of the transaction.
    def own_row(key):
        return (
            "INSERT INTO outbox_message (topic, key, payload, headers, created_at)"
            " VALUES ('own', %s, '{}'::jsonb, '{}'::jsonb, now())",
            [key],
        )

    with CaptureQueriesContext(connection) as q, transaction.atomic():
        ids = outbox_enqueue_many(events("along-", 2), along_with=[own_row("own-0")])
        outbox_enqueue_many([], along_with=[own_row("own-1")])
    with contextlib.suppress(RuntimeError), transaction.atomic():
        outbox_enqueue_many(events("gone-", 1), along_with=[own_row("own-gone")])
        raise RuntimeError("roll back")
    out["along"] = {
        "round_trips": len(statements(q)),
        "returned": sorted(OutboxMessage.objects.filter(id__in=ids).values_list("key", flat=True)),
        "stored_by_id": list(
            OutboxMessage.objects.filter(key__regex=r"^(own|along|gone)")
            .order_by("id")
            .values_list("key", flat=True)
        ),
        "delivered": delivered(listener),
    }

    # One NOTIFY per transaction, whichever function wrote; again in the next one.
    with CaptureQueriesContext(connection) as q:
        with transaction.atomic():
            outbox_enqueue(topic="t", key="mixed-0", payload={})
            outbox_enqueue_many(events("mixed-", 2))
            outbox_enqueue(topic="t", key="mixed-3", payload={})
        first = count(q, "pg_notify")
        with transaction.atomic():
            outbox_enqueue(topic="t", key="next-0", payload={})
    out["mixed"] = {
        "first": first,
        "both": count(q, "pg_notify"),
        "delivered": delivered(listener),
    }

    # A rolled-back transaction's NOTIFY is gone: the next transaction sends its own.
    with CaptureQueriesContext(connection) as q:
        with contextlib.suppress(RuntimeError), transaction.atomic():
            outbox_enqueue(topic="t", key="rolled-back", payload={})
            raise RuntimeError
        with transaction.atomic():
            outbox_enqueue(topic="t", key="after-rollback", payload={})
    out["after_rollback"] = {
        "notifies": count(q, "pg_notify"),
        "rows": list(
            OutboxMessage.objects.filter(key__in=["rolled-back", "after-rollback"]).values_list(
                "key", flat=True
            )
        ),
        "delivered": delivered(listener),
    }

    # One sent in a savepoint that was released stays, whatever rolls back later ...
    with CaptureQueriesContext(connection) as q, transaction.atomic():
        with transaction.atomic():
            outbox_enqueue(topic="t", key="kept-savepoint", payload={})
        with contextlib.suppress(RuntimeError), transaction.atomic():
            raise RuntimeError
        outbox_enqueue(topic="t", key="outer", payload={})
    out["kept_savepoint"] = {"notifies": count(q, "pg_notify"), "delivered": delivered(listener)}
    # ... one sent in a savepoint that rolls back is gone: the next write notifies again.
    with CaptureQueriesContext(connection) as q, transaction.atomic():
        with contextlib.suppress(RuntimeError), transaction.atomic():
            outbox_enqueue_many(events("lost-", 2))
            raise RuntimeError
        outbox_enqueue(topic="t", key="after-savepoint", payload={})
    out["lost_savepoint"] = {
        "notifies": count(q, "pg_notify"),
        "rows": list(
            OutboxMessage.objects.filter(key__in=["lost-0", "lost-1", "after-savepoint"])
            .values_list("key", flat=True)
        ),
        "delivered": delivered(listener),
    }

    # Outside a transaction nothing is written.
    before = OutboxMessage.objects.count()
    refused = []
    for write in (
        lambda: outbox_enqueue(topic="t", key="outside", payload={}),
        lambda: outbox_enqueue_many(events("outside-", 2)),
    ):
        try:
            write()
        except OutboxOutsideTransaction:
            refused.append(True)
    out["outside"] = {"refused": refused, "written": OutboxMessage.objects.count() - before}

    with CaptureQueriesContext(connection) as q, transaction.atomic():
        out["empty"] = {"rows": outbox_enqueue_many([]), "statements": statements(q)}

    # Each event carries its own trace context, else the current one (none here).
    span = SpanContext(
        trace_id=0xABC, span_id=0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    with transaction.atomic():
        traced, plain = outbox_enqueue_many(
            [
                OutboxEvent(
                    topic="t",
                    key="traced",
                    payload={},
                    headers={"x": "1"},
                    context=trace.set_span_in_context(NonRecordingSpan(span)),
                ),
                OutboxEvent(topic="t", key="plain", payload={}),
            ]
        )
    out["context"] = {
        "traced": OutboxMessage.objects.get(id=traced).headers,
        "plain": OutboxMessage.objects.get(id=plain).headers,
    }

    # The relay: two statements a batch however many rows, in id order.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'outbox_message_unpublished'"
        )
        out["index"] = cursor.fetchone()[0]
    unpublished = list(
        OutboxMessage.objects.filter(published_at__isnull=True)
        .order_by("id")
        .values_list("key", flat=True)
    )
    publisher = FakePublisher()
    with CaptureQueriesContext(connection) as q:
        first_batch = publish_batch(publisher, batch_size=4, flush_timeout=1)
        rest = publish_batch(publisher, batch_size=1000, flush_timeout=1)
        nothing = publish_batch(publisher, batch_size=1000, flush_timeout=1)
    out["relay"] = {
        "published": [first_batch, rest, nothing],
        "statements": [sql.split(" ", 1)[0] for sql in statements(q)],
        "order": publisher.sent == unpublished,
        "left": OutboxMessage.objects.filter(published_at__isnull=True).count(),
        "traced_headers": publisher.headers["traced"],
    }

    # Two relays side by side: the lanes another relay holds for its batch are left to
    # it; once it is done, they are published, each key's events still in order.
    from common.outbox.relay import LANES, _LANE_LOCK_CLASS

    with transaction.atomic():
        outbox_enqueue_many(
            [
                OutboxEvent(topic="t", key=f"lane-key-{k}", payload={"n": n})
                for n in range(3)
                for k in range(24)
            ]
        )
    other = own_connection()  # the other relay, in the middle of its batch:
    other.autocommit = False  # its lane locks last until its transaction ends
    with other.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, lane) FROM generate_series(0, 3) AS lane",
            [_LANE_LOCK_CLASS],
        )
        cursor.execute(
            "SELECT key, (hashtext(key) & %s) FROM outbox_message WHERE published_at IS NULL",
            [LANES - 1],
        )
        lane_of = dict(cursor.fetchall())
    publisher = FakePublisher()
    while publish_batch(publisher, batch_size=5, flush_timeout=1):
        pass
    held_back = sorted({lane_of[key] for key in lane_of if key not in publisher.sent})
    sent_lanes = sorted({lane_of[key] for key in publisher.sent})
    other.rollback()  # its batch ends: the lanes are free
    while publish_batch(publisher, batch_size=5, flush_timeout=1):
        pass
    other.close()
    by_key = {}
    for key, value in zip(publisher.sent, publisher.values):
        by_key.setdefault(key, []).append(value["n"])
    out["lanes"] = {
        "held_back": held_back,
        "sent_first": sent_lanes,
        "in_order": all(ns == [0, 1, 2] for ns in by_key.values()),
        "keys": len(by_key),
        "left": OutboxMessage.objects.filter(published_at__isnull=True).count(),
    }
    listener.close()
finally:
    connection.creation.destroy_test_db(svc.database, verbosity=0)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    report: dict[str, Any] = run_python_json(SCENARIOS)
    return report


def test_many_events_are_one_insert_and_one_notify_with_ids_in_the_order_given(
    seen: dict[str, Any],
) -> None:
    many = seen["many"]

    assert (many["inserts"], many["notifies"]) == (1, 1)
    keys = [key for key, _ in many["returned"]]
    ids = [row_id for _, row_id in many["returned"]]
    assert keys == [f"many-{i}" for i in range(5)]
    assert ids == sorted(ids)
    assert many["stored_by_id"] == keys
    assert many["delivered"] == 1


def test_the_callers_writes_go_along_in_the_same_round_trip_and_transaction(
    seen: dict[str, Any],
) -> None:
    along = seen["along"]

    assert along["round_trips"] == 2  # one call with events, one without
    assert along["returned"] == ["along-0", "along-1"]  # the events' ids only
    # The caller's row first, then the events; the rolled-back call left nothing.
    assert along["stored_by_id"] == ["own-0", "along-0", "along-1", "own-1"]
    assert along["delivered"] == 1


def test_a_transaction_notifies_the_relay_once_whichever_function_wrote(
    seen: dict[str, Any],
) -> None:
    assert seen["mixed"] == {"first": 1, "both": 2, "delivered": 2}


def test_after_a_rollback_the_next_transaction_notifies_again(seen: dict[str, Any]) -> None:
    after = seen["after_rollback"]

    assert after["notifies"] == 2
    assert after["rows"] == ["after-rollback"]
    assert after["delivered"] == 1


def test_a_notify_lost_with_its_savepoint_is_sent_again(seen: dict[str, Any]) -> None:
    assert seen["kept_savepoint"] == {"notifies": 1, "delivered": 1}
    lost = seen["lost_savepoint"]

    assert lost["notifies"] == 2
    assert lost["rows"] == ["after-savepoint"]
    assert lost["delivered"] == 1


def test_outside_a_transaction_nothing_is_enqueued(seen: dict[str, Any]) -> None:
    assert seen["outside"] == {"refused": [True, True], "written": 0}
    assert seen["empty"] == {"rows": [], "statements": []}


def test_each_event_carries_its_own_trace_context(seen: dict[str, Any]) -> None:
    traced, plain = seen["context"]["traced"], seen["context"]["plain"]

    assert traced["x"] == "1"
    assert traced["traceparent"] == f"00-{0xABC:032x}-{0xDEF:016x}-01"
    assert "traceparent" not in plain  # no span is current in that process


def test_the_relay_scans_a_partial_index_and_takes_two_statements_a_batch(
    seen: dict[str, Any],
) -> None:
    assert "WHERE (published_at IS NULL)" in seen["index"]
    relay = seen["relay"]

    first_batch, rest, nothing = relay["published"]
    assert first_batch == 4 and rest > 4 and nothing == 0
    # Per batch: the lanes' locks, SELECT ... FOR UPDATE SKIP LOCKED and one UPDATE;
    # when idle, the locks and one SELECT.
    assert (
        relay["statements"]
        == ["SELECT"] * 2 + ["UPDATE"] + ["SELECT"] * 2 + ["UPDATE"] + ["SELECT"] * 2
    )
    assert relay["order"] is True
    assert relay["left"] == 0
    # Nothing records spans in that process: the message carries the stored context as is.
    assert relay["traced_headers"]["traceparent"] == f"00-{0xABC:032x}-{0xDEF:016x}-01"
    assert relay["traced_headers"]["message-id"].isdigit()


def test_relays_side_by_side_never_send_one_keys_events_out_of_order(
    seen: dict[str, Any],
) -> None:
    lanes = seen["lanes"]

    # While the other relay held lanes 0-3, only the rest left; then everything did.
    assert lanes["held_back"] == [0, 1, 2, 3]
    assert set(lanes["sent_first"]).isdisjoint({0, 1, 2, 3})
    assert lanes["keys"] == 24 and lanes["left"] == 0
    assert lanes["in_order"] is True
