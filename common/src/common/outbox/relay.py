"""The outbox relay: publishes committed outbox rows to Kafka, in id order.

How it wakes: a dedicated psycopg2 connection LISTENs on channel "outbox";
`outbox_enqueue` NOTIFYs it, and PostgreSQL delivers that at commit, so a new event
leaves within milliseconds. It also wakes every `idle_timeout` seconds as a safety
net (a lost listener connection, rows written by other means).

One batch, in one transaction of two statements whatever its size: take up to
`batch_size` unpublished rows `ORDER BY id FOR UPDATE SKIP LOCKED` (served by the
partial index of unpublished rows), produce them all, flush and require every delivery
to succeed, then set `published_at` on all of them with one UPDATE and commit. Any
failure rolls the batch back, and the relay backs off and tries the same rows again.
The producer queues the whole batch before the flush and lingers a few milliseconds
(common.kafka.config), so a batch leaves in a few produce requests per partition.

Delivery is at least once, never at most once:
- If the relay dies (or the commit fails) after Kafka took a batch but before the
  commit, those rows are still unpublished and are produced again by the next run.
  A failed flush also re-sends the part of the batch that did arrive. So consumers
  must be idempotent; every message carries the header `message-id` = the row id
  (unique per source database) so they can recognise a repeat.
- Within one producer session the idempotent producer (enable.idempotence) keeps
  librdkafka's own retries from writing a message twice or out of order.
- A row that Kafka can never take (say, larger than message.max.bytes) blocks the
  relay: it is logged on every attempt and needs a person; it is never dropped.

Order: rows leave in id order per batch, so events about one key, written in
successive transactions, arrive in that order on their partition. Several relays of
one database may run side by side (`make up REPLICAS=2`): the rows are split into
lanes by key, and one relay at a time holds a lane for its batch (`_take_lanes`), so
one key's events never leave out of order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import psycopg2
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, transaction

from common.kafka.consumer import Backoff, close_stale_db_connections
from common.kafka.messages import MESSAGE_ID_HEADER
from common.kafka.metrics import PUBLISHED
from common.kafka.producer import DEFAULT_FLUSH_TIMEOUT, KafkaPublisher, Publisher
from common.kafka.shutdown import stop_event_on_signals
from common.observability.tracing import producer_span, recording
from common.outbox.models import OutboxMessage
from common.outbox.services import NOTIFY_CHANNEL
from common.postgresql import own_connection

logger = logging.getLogger(__name__)

_STOP_CHECK = 0.25  # seconds: how soon a waiting relay notices a stop request


def message_value(row: OutboxMessage) -> bytes:
    """Answer the Kafka value of a row: its payload as compact UTF-8 JSON."""
    return json.dumps(row.payload, separators=(",", ":"), cls=DjangoJSONEncoder).encode()


def message_headers(row: OutboxMessage) -> dict[str, str]:
    """Answer the Kafka headers of a row; `message-id` lets consumers drop repeats."""
    return {
        **{str(k): str(v) for k, v in (row.headers or {}).items()},
        MESSAGE_ID_HEADER: str(row.id),
        "content-type": "application/json",
    }


# A batch's two statements, in plain SQL: compiling the ORM's queries cost more than
# running them, once per wake (four wakes a saga at a low rate). The first is served by
# the partial index of unpublished rows.
_TABLE = OutboxMessage._meta.db_table
_UNPUBLISHED_SQL = (
    f"SELECT * FROM {_TABLE} WHERE published_at IS NULL AND (hashtext(key) & %s) = ANY(%s)"
    " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
)
_PUBLISHED_SQL = f"UPDATE {_TABLE} SET published_at = statement_timestamp() WHERE id = ANY(%s)"


def publish_batch(publisher: Publisher, *, batch_size: int, flush_timeout: float) -> int:
    """Publish up to `batch_size` unpublished rows; answer how many were published.

    Raises (and marks nothing) if any row was not delivered.
    """
    with transaction.atomic():
        lanes = _take_lanes()
        if not lanes:
            return 0  # another relay holds them all for its batch
        rows = list(OutboxMessage.objects.raw(_UNPUBLISHED_SQL, [LANES - 1, lanes, batch_size]))
        if not rows:
            return 0
        traced = recording()
        for row in rows:
            headers = message_headers(row)
            if not traced:
                # Nothing would record a publish span (tens of microseconds a row): the
                # message carries the context stored with the row, so the trace goes on.
                publisher.publish(row.topic, row.key, message_value(row), headers)
                continue
            # Child of the context stored with the row; the message carries this span's.
            with producer_span(row.topic, headers, **{"messaging.message.id": str(row.id)}):
                publisher.publish(row.topic, row.key, message_value(row), headers)
        publisher.flush(flush_timeout)
        with connection.cursor() as cursor:
            cursor.execute(_PUBLISHED_SQL, [[row.id for row in rows]])
    for topic, published in Counter(row.topic for row in rows).items():
        PUBLISHED.labels(topic).inc(published)
    logger.debug("outbox relay published ids %s..%s", rows[0].id, rows[-1].id)
    return len(rows)


# Rows are split into lanes by key; a relay publishes a lane only while it holds the
# lane's advisory lock, for its whole batch (taken in a statement of its own, before the
# rows are read, so the rows' snapshot sees everything its last holder published). So
# relays running side by side never interleave one key's events out of order, and a
# killed relay's lanes are free the moment its transaction ends. Advisory locks belong
# to one database: the relays of different services never meet.
LANES = 8  # a power of two: a row's lane is the low bits of its key's hash
_LANE_LOCK_CLASS = 0x0B0C  # the first key of the two-key advisory lock: "outbox"


def _take_lanes() -> list[int]:
    """Try every lane's lock for this transaction; answer the lanes this relay got."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lane FROM generate_series(0, %s) AS lane"
            " WHERE pg_try_advisory_xact_lock(%s, lane)",
            [LANES - 1, _LANE_LOCK_CLASS],
        )
        return [lane for (lane,) in cursor.fetchall()]


class OutboxListener:
    """LISTEN outbox on a connection of its own; `wait()` returns on NOTIFY or timeout."""

    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self._using = using
        self._conn: Any = None

    def connect(self) -> None:
        """Open the connection and LISTEN (idempotent); logs and carries on if the DB is down."""
        if self._conn is not None:
            return
        try:
            conn = own_connection(self._using)
            with conn.cursor() as cursor:
                cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._conn = conn
        except psycopg2.Error as exc:
            logger.warning("outbox listener cannot connect (polling instead): %s", exc)

    def wait(self, timeout: float, stop_event: threading.Event) -> None:
        """Block until a NOTIFY arrives, `timeout` passes or `stop_event` is set."""
        self.connect()
        if self._conn is None:
            stop_event.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        try:
            # select() cannot see the stop event: wait in short slices.
            while not self._conn.notifies and not stop_event.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                ready, _, _ = select.select([self._conn], [], [], min(remaining, _STOP_CHECK))
                if ready:
                    self._conn.poll()
            self._conn.notifies.clear()
        except (psycopg2.Error, OSError, ValueError) as exc:
            logger.warning("outbox listener lost its connection: %s", exc)
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg2.Error):
                self._conn.close()
            self._conn = None


def run_relay(
    *,
    batch_size: int = 500,
    stop_event: threading.Event | None = None,
    idle_timeout: float = 1.0,
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
    producer_overrides: Mapping[str, Any] | None = None,
    publisher_factory: Callable[[], Publisher] | None = None,
) -> None:
    """Publish the outbox until `stop_event` (default: SIGTERM/SIGINT) is set.

    A stop request lets the batch in hand finish. `producer_overrides` and
    `publisher_factory` let a test point the relay at its own broker or a fake.
    """
    stop = stop_event or stop_event_on_signals()
    make_publisher = publisher_factory or (
        lambda: KafkaPublisher(config_overrides=producer_overrides)
    )
    publisher = make_publisher()
    listener = OutboxListener()
    backoff = Backoff()
    listener.connect()  # LISTEN before the first scan, so no NOTIFY falls in between
    logger.info("outbox relay started")
    try:
        while not stop.is_set():
            close_stale_db_connections()
            try:
                # Full batches mean more rows wait: go on without sleeping.
                while not stop.is_set() and batch_size == publish_batch(
                    publisher, batch_size=batch_size, flush_timeout=flush_timeout
                ):
                    pass
            except Exception:
                logger.exception("outbox relay batch failed; rows stay unpublished, will retry")
                publisher = _recover(publisher, make_publisher, flush_timeout)
                stop.wait(backoff.next_delay())
                continue
            backoff.reset()
            listener.wait(idle_timeout, stop)
    finally:
        listener.close()
        close_stale_db_connections()
        logger.info("outbox relay stopped")


def _recover(
    publisher: Publisher, make_publisher: Callable[[], Publisher], flush_timeout: float
) -> Publisher:
    """Drain what a failed batch left queued, so its failures are not blamed on the next
    batch; replace a producer that hit a fatal error."""
    if getattr(publisher, "broken", False):
        return make_publisher()
    try:
        publisher.flush(flush_timeout)
    except Exception as exc:  # already being retried; only the draining matters
        logger.debug("draining the failed batch: %s", exc)
    return publisher
