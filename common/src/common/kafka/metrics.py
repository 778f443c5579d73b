"""Kafka metrics: messages consumed by outcome, published by the relay, consumer lag.

Lag comes from librdkafka's own statistics (`statistics.interval.ms`), delivered to
`stats_cb` during `consume()`: no extra broker round trip to measure it. A partition
reports `consumer_lag` -1 until the consumer knows both its position and the high
watermark; such partitions are left out rather than shown as zero.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from common.observability.metrics import counter, gauge

logger = logging.getLogger(__name__)

STATISTICS_INTERVAL_MS = 5000

CONSUMED = counter(
    "kafka_messages_consumed",
    "Kafka messages handled by a consumer loop, by outcome",
    ["topic", "outcome"],  # handled | dead_lettered | retried
)
PUBLISHED = counter(
    "kafka_messages_published", "Messages the outbox relay published to Kafka", ["topic"]
)
LAG = gauge(
    "kafka_consumer_lag_messages",
    "Messages on a partition not yet consumed by its group (librdkafka statistics)",
    ["group", "topic", "partition"],
    # One owner per partition at a time; after a rebalance the newest report wins.
    multiprocess_mode="mostrecent",
)


def record_lag(group: str, stats_json: str) -> None:
    """`stats_cb` of a consumer: set the lag of every partition it knows a lag for."""
    try:
        stats = json.loads(stats_json)
    except ValueError:
        logger.debug("unreadable librdkafka statistics")
        return
    for topic, topic_stats in (stats.get("topics") or {}).items():
        for partition, p in (topic_stats.get("partitions") or {}).items():
            lag = _int(p.get("consumer_lag"))
            if partition == "-1" or lag is None or lag < 0:
                continue  # -1 is librdkafka's "unassigned partition" bucket
            LAG.labels(group=group, topic=topic, partition=partition).set(lag)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None
