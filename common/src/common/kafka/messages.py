"""What a consumer handler receives, and how it refuses a message it cannot read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message

# Header set by the outbox relay: the outbox row id, unique per source database,
# so a consumer can recognise a message it has already applied.
MESSAGE_ID_HEADER = "message-id"


# Headers as librdkafka hands them over.
RawHeaders = dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]]


def decode_headers(headers: RawHeaders | None) -> dict[str, bytes]:
    """Answer librdkafka's headers (list or dict, values str/bytes/None) as name -> bytes."""
    items = headers.items() if isinstance(headers, dict) else (headers or [])
    return {k: v.encode() if isinstance(v, str) else (v or b"") for k, v in items}


class PoisonMessage(Exception):
    """Raised by a handler for a message that can never be handled (bad JSON, bad schema).

    The consumer loop sends it to the topic's DLQ with `reason` and moves on.
    Transient failures must raise anything else: those are retried, never skipped.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ConsumedMessage:
    """One Kafka record, decoded from librdkafka's `Message`.

    Kafka allows a header name twice; `headers` keeps the last value.
    """

    key: str | None
    value: bytes
    topic: str
    partition: int
    offset: int
    headers: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def from_kafka(cls, message: Message) -> ConsumedMessage:
        key = message.key()
        return cls(
            key=key.decode(errors="replace") if isinstance(key, bytes) else key,
            value=message.value() or b"",
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            headers=decode_headers(message.headers()),
        )

    def header(self, name: str) -> str | None:
        """Answer a header as text, or None when absent."""
        value = self.headers.get(name)
        return None if value is None else value.decode(errors="replace")

    @property
    def message_id(self) -> str | None:
        """The producer's id of this message (the outbox row id), for deduplication."""
        return self.header(MESSAGE_ID_HEADER)

    def json(self) -> Any:
        """Answer the value parsed as JSON; raise `PoisonMessage` if it is not JSON."""
        try:
            return json.loads(self.value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PoisonMessage(f"value is not JSON: {exc}") from exc
