"""The saga's Kafka topics, declared once.

`Topic` is a StrEnum: a member is the topic's name, so pass `Topic.PURCHASE` wherever
a topic name (a str) is wanted, never `Topic.PURCHASE.value`.
"""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    """Kafka topics of the saga; each has a dead-letter twin `<topic>.DLQ`."""

    PURCHASE = "purchase"
    PURCHASE_RESULT = "purchase-result"

    @property
    def dlq(self) -> str:
        return f"{self}.DLQ"


def saga_topics() -> list[str]:
    """Every topic the platform creates, each followed by its DLQ, as plain strings
    (YAML and the deploy generators want exact `str`)."""
    return [name for t in Topic for name in (str(t), t.dlq)]
