"""Publishing to Kafka with delivery errors surfaced to whoever flushes.

`produce()` only queues a message; librdkafka reports its fate later, in a
delivery callback. `KafkaPublisher` collects the failures of those callbacks and
`flush()` raises them as one `DeliveryError`, so a caller (the outbox relay, a
consumer writing to its DLQ) knows that what it published did not arrive and must
not be marked done.

The module-level `publish()`/`flush()` share one producer per process, created on
first use and re-created after a fork (a librdkafka handle does not survive one).
Failures are collected per publisher, not per caller: a component that must know
exactly which of its own messages failed owns a `KafkaPublisher` of its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from common.kafka.config import MESSAGE_TIMEOUT_MS, producer_config
from common.kafka.messages import decode_headers

logger = logging.getLogger(__name__)

Headers = Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]]

# Longer than message.timeout.ms: by then every queued message has succeeded or failed.
DEFAULT_FLUSH_TIMEOUT = MESSAGE_TIMEOUT_MS / 1000 + 5
_QUEUE_FULL_RETRIES = 10


@dataclass(frozen=True)
class DeliveryFailure:
    """One message the broker did not take."""

    topic: str
    key: str | None
    headers: dict[str, bytes]
    error: str


class DeliveryError(Exception):
    """Some published messages were not delivered; the caller must treat them as unsent."""

    def __init__(self, failures: list[DeliveryFailure], undelivered: int = 0) -> None:
        self.failures = failures
        self.undelivered = undelivered  # still queued when the flush timed out
        first = f"; first: {failures[0].topic}: {failures[0].error}" if failures else ""
        super().__init__(f"{len(failures)} failed, {undelivered} still queued{first}")


class Publisher(Protocol):
    """What the relay and the consumer loop need from a producer (fakes in tests)."""

    def publish(
        self, topic: str, key: str | bytes | None, value: bytes, headers: Headers | None = None
    ) -> None: ...

    def flush(self, timeout: float = DEFAULT_FLUSH_TIMEOUT) -> None: ...


def _encode_headers(headers: Headers | None) -> list[tuple[str, str | bytes | None]]:
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in items]


class KafkaPublisher:
    """An idempotent producer whose `flush()` raises what was not delivered."""

    def __init__(
        self,
        *,
        config_overrides: Mapping[str, Any] | None = None,
        producer: Producer | None = None,
    ) -> None:
        config = producer_config(config_overrides)
        config["error_cb"] = self._on_error
        self._producer = producer if producer is not None else Producer(config)
        self._lock = threading.Lock()
        self._failures: list[DeliveryFailure] = []
        self.fatal_error: KafkaError | None = None

    def publish(
        self, topic: str, key: str | bytes | None, value: bytes, headers: Headers | None = None
    ) -> None:
        """Queue one message; its failure surfaces at the next `flush()`."""
        if self.fatal_error is not None:
            raise KafkaException(self.fatal_error)
        encoded = _encode_headers(headers)
        for _ in range(_QUEUE_FULL_RETRIES):
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=encoded, on_delivery=self._on_delivery
                )
                break
            except BufferError:
                # Local queue full: serve delivery reports to make room, then retry.
                self._producer.poll(0.5)
        else:
            raise BufferError(f"producer queue stayed full; {topic} message not queued")
        self._producer.poll(0)

    def flush(self, timeout: float = DEFAULT_FLUSH_TIMEOUT) -> None:
        """Wait for every queued message; raise `DeliveryError` if any did not arrive."""
        undelivered = self._producer.flush(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if failures or undelivered:
            raise DeliveryError(failures, undelivered)

    @property
    def broken(self) -> bool:
        """A fatal error makes the producer unusable; the owner must build a new one."""
        return self.fatal_error is not None

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            return
        key = message.key()
        failure = DeliveryFailure(
            topic=message.topic() or "",
            key=key.decode(errors="replace") if isinstance(key, bytes) else key,
            headers=decode_headers(message.headers()),
            error=str(error),
        )
        with self._lock:
            self._failures.append(failure)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self.fatal_error = error
            logger.error("kafka producer fatal error: %s", error)
        else:
            logger.warning("kafka producer error: %s", error)


_shared: tuple[int, KafkaPublisher] | None = None
_shared_lock = threading.Lock()


def get_publisher() -> KafkaPublisher:
    """Answer this process's shared publisher, creating it after a fork or a fatal error."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid() or _shared[1].broken:
            _shared = (os.getpid(), KafkaPublisher())
        return _shared[1]


def publish(
    topic: str, key: str | bytes | None, value: bytes, headers: Headers | None = None
) -> None:
    """Queue a message on the shared producer; call `flush()` to learn its fate."""
    get_publisher().publish(topic, key, value, headers)


def flush(timeout: float = DEFAULT_FLUSH_TIMEOUT) -> None:
    """Flush the shared producer; raise `DeliveryError` for what was not delivered."""
    get_publisher().flush(timeout)
