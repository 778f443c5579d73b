"""Every Kafka consumer of the system, declared once (Sentry style).

A process runs one of them by name: `manage.py kafka_consume <name>`. A handler is
named by dotted path so this module imports no service code; it is loaded only in
the process that runs it.

A handler is `handler(message: ConsumedMessage) -> None`, called once per message
in offset order. It must make its effect durable (commit its own transaction)
before returning, and be idempotent: after a crash or a rebalance a message is
delivered again. It raises `PoisonMessage(reason)` for a message that can never be
handled; any other exception means "try again later".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from common.kafka.messages import ConsumedMessage
from common.topology import Topic

Handler = Callable[[ConsumedMessage], None]


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer: what it reads, as which group, and who handles the messages."""

    name: str
    topic: Topic
    group_id: str
    handler: str  # dotted path to a Handler
    batch_size: int = 100
    # Handle each batch in one database transaction (falling back to one per message
    # when anything in it raises): for handlers whose cost is mostly the commit.
    batch_transaction: bool = False

    @property
    def dlq(self) -> str:
        return self.topic.dlq

    def load_handler(self) -> Handler:
        """Import the handler function named by `handler`."""
        module_path, _, attribute = self.handler.rpartition(".")
        handler: Handler = getattr(importlib.import_module(module_path), attribute)
        return handler


CONSUMERS: dict[str, ConsumerSpec] = {
    spec.name: spec
    for spec in (
        ConsumerSpec(
            name="purchases",
            topic=Topic.PURCHASE,
            group_id="orchestrator",
            handler="orchestrator_svc.sagas.consumers.handle_purchase_created",
            batch_transaction=True,
        ),
        ConsumerSpec(
            name="purchase-results",
            topic=Topic.PURCHASE_RESULT,
            group_id="purchase",
            handler="purchase_svc.purchases.consumers.handle_purchase_result",
            batch_transaction=True,
        ),
    )
}
