"""librdkafka configuration for every producer and consumer of the services.

One place decides the delivery guarantees: an idempotent producer that waits for
all in-sync replicas, and consumers that never commit on their own. Layers, later
wins: these defaults, the optional Django settings `KAFKA_PRODUCER_CONFIG` /
`KAFKA_CONSUMER_CONFIG` (dicts), then the `overrides` a caller passes (tests
pointing at a throwaway broker, say).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from common.topology import INFRA

# A message that has not reached the broker by then fails with a delivery error,
# so a flush with a longer timeout always learns the fate of every message.
MESSAGE_TIMEOUT_MS = 30_000
# The environment variable that names a consumer process in its group (static membership).
GROUP_INSTANCE_ENV = "KAFKA_GROUP_INSTANCE_ID"


def _django_setting(name: str, default: Any) -> Any:
    """Answer a Django setting, or `default` when Django is not configured."""
    from django.conf import settings

    if not settings.configured:
        return default
    return getattr(settings, name, default)


def bootstrap_servers() -> str:
    """Answer the broker list: settings.KAFKA_BOOTSTRAP_SERVERS, else the environment."""
    return str(_django_setting("KAFKA_BOOTSTRAP_SERVERS", INFRA.kafka_bootstrap))


def client_id(role: str) -> str:
    """Answer a client.id that names the service, role and process in broker logs."""
    service = _django_setting("SERVICE_NAME", "saga")
    return f"{service}-{role}-{socket.gethostname()}-{os.getpid()}"


def producer_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Answer the config of an idempotent, batching producer."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers(),
        "client.id": client_id("producer"),
        # No duplicates or reordering from the producer's own retries.
        "enable.idempotence": True,
        "acks": "all",
        # Tiny delay so a burst leaves in few produce requests (fewer requests is less
        # broker CPU). A relay's batch waits for none of it: flush() sends at once.
        # batch.num.messages (10,000) and batch.size (1 MB) stay at librdkafka's
        # defaults: a relay batch of 500 small JSON events fits in one request.
        "linger.ms": 5,
        # Cheap to compress and decompress; repeated JSON keys shrink several-fold.
        "compression.type": "lz4",
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
    }
    config.update(_django_setting("KAFKA_PRODUCER_CONFIG", {}))
    config.update(overrides or {})
    return config


def consumer_config(group_id: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Answer the config of a consumer whose offsets the loop commits by hand."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers(),
        "client.id": client_id(f"consumer-{group_id}"),
        "group.id": group_id,
        # Offsets move only after the handler made the effect durable.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # A new group reads the topic from its start: no event is skipped.
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        # Fetching stays at librdkafka's defaults, which add no latency: the broker
        # answers a fetch as soon as one byte is there (fetch.min.bytes=1) and holds
        # an empty one at most fetch.wait.max.ms=500; a busy partition arrives in
        # batches anyway, which the loop handles in one transaction.
    }
    if instance := os.environ.get(GROUP_INSTANCE_ENV):
        # Static membership (KIP-345): a consumer restarted under the same id takes its
        # partitions back as soon as it rejoins, instead of waiting out the session of
        # the member it replaces (45 s): a killed consumer stalls its topic for as long
        # as supervisord takes to restart it. Each process of a group needs its own id.
        config["group.instance.id"] = instance
    config.update(_django_setting("KAFKA_CONSUMER_CONFIG", {}))
    config.update(overrides or {})
    return config
