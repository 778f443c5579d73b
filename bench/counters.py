"""What the stack did between two moments, counted where it happens: database
transactions (PostgreSQL's statistics), Kafka messages (high watermarks) and gRPC calls
(each server's own counter). A source that cannot be read turns its figure off, never
the run: a reading is either its counts or the reason it failed.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Mapping

from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from common.contract.topics import saga_topics
from common.testing import connect
from common.topology import INFRA, SERVICES

Counts = dict[str, float]
Reading = Counts | str  # the counts, or why they could not be read

DATABASES = tuple(s.database for s in SERVICES.values())
GRPC_SERVICES = tuple(s for s in SERVICES.values() if s.grpc_port is not None)
# common.grpc.server's counter (prometheus_client adds "_total"); health checks are not in it.
GRPC_HANDLED = "grpc_server_handled_total"
TIMEOUT = 5.0


def db_transactions() -> Counts:
    """{database: commits + rollbacks so far} of the six services' databases.

    PostgreSQL publishes a backend's counts when it goes idle, at most once a second,
    so the last second of a connection that then stays idle shows up only when it is
    used again: the caller reads after a pause, and a figure may be a little short.
    """
    conn = connect("purchase")  # any role may read every database's statistics
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT datname, xact_commit + xact_rollback FROM pg_stat_database"
                " WHERE datname = ANY(%s)",
                [list(DATABASES)],
            )
            return {str(name): float(n) for name, n in cursor.fetchall()}
    finally:
        conn.close()


def kafka_messages() -> Counts:
    """{topic: messages ever written} of the saga topics and their dead-letter twins:
    the sum of the partitions' high watermarks (offsets only grow, and no producer of
    ours is transactional, so no commit markers take offsets)."""
    consumer = Consumer(
        {"bootstrap.servers": INFRA.kafka_bootstrap, "group.id": "bench-watermarks"}
    )
    try:
        topics = saga_topics()
        metadata = consumer.list_topics(timeout=TIMEOUT).topics
        found: Counts = {}
        for topic in topics:
            partitions = metadata[topic].partitions if topic in metadata else {}
            found[topic] = float(
                sum(
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)[1]
                    for p in partitions
                )
            )
        return found
    finally:
        consumer.close()


def handled_by_method(metrics_text: str) -> Counts:
    """{full method name: RPCs answered, every status code} from a /metrics page."""
    found: Counts = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == GRPC_HANDLED:
                method = sample.labels["method"]
                found[method] = found.get(method, 0.0) + sample.value
    return found


def grpc_calls() -> Counts:
    """{full method name: RPCs answered so far}, from each gRPC service's /metrics (its
    own HTTP port: the edge does not route it), which adds up all its processes."""
    found: Counts = {}
    for service in GRPC_SERVICES:
        url = f"http://127.0.0.1:{service.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            found.update(handled_by_method(response.read().decode()))
    return found


SOURCES: dict[str, Callable[[], Counts]] = {
    "db_transactions": db_transactions,
    "kafka_messages": kafka_messages,
    "grpc_calls": grpc_calls,
}


def read(source: str) -> Reading:
    """The counts of one of `SOURCES` now, or why they could not be read."""
    try:
        return SOURCES[source]()
    except Exception as error:  # noqa: BLE001 - any failure only turns this figure off
        return f"{type(error).__name__}: {str(error).strip()[:200]}"


def delta(before: Reading, after: Reading) -> Reading:
    """What each key grew by between two readings. A key that appears only after
    started from zero (a metric is created on first use); one that shrank means its
    counter restarted (a `make restart` in between), which spoils the figure."""
    if isinstance(before, str) or isinstance(after, str):
        return before if isinstance(before, str) else after
    grown = {key: value - before.get(key, 0.0) for key, value in after.items()}
    shrunk = sorted(key for key, value in grown.items() if value < 0)
    if shrunk:
        return f"counters restarted during the run: {', '.join(shrunk)}"
    return grown


def per_saga(grown: Mapping[str, float], sagas: int) -> dict[str, float]:
    """Each count divided by `sagas`, keys in the order given; nothing without sagas."""
    if sagas <= 0:
        return {}
    return {key: round(value / sagas, 3) for key, value in grown.items()}
