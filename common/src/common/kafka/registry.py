"""Every Kafka consumer of the system, declared once (Sentry style).

A process runs one of them by name: `manage.py kafka_consume <name>`. A handler is
named by dotted path so this module imports no service code; it is loaded only in
the process that runs it.

A handler is `handler(message: ConsumedMessage) -> None`, called once per message
in offset order. It must make its effect durable (commit its own transaction)
before returning, and be idempotent: after a crash or a rebalance a message is
delivered again. It raises `PoisonMessage(reason)` for a message that can never be
handled; any other exception means "try again later".

A spec with `batch_transaction` may also name a batch handler,
`batch_handler(messages: list[ConsumedMessage]) -> None`: the loop calls it once for
a whole batch inside the batch's transaction, so it can apply the batch in a constant
number of statements. It must not commit (the loop does) and must have the same effect
as the per-message handler applied in order. If it raises anything (a `PoisonMessage`
included) the batch rolls back and the loop handles it message by message instead,
which finds the poison message and sends it alone to the DLQ.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.kafka.messages import ConsumedMessage
from common.topology import Topic

Handler = Callable[[ConsumedMessage], None]
BatchHandler = Callable[[list[ConsumedMessage]], None]


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
    # Dotted path to a BatchHandler: one call per batch, inside its transaction.
    batch_handler: str | None = None

    def __post_init__(self) -> None:
        if self.batch_handler and not self.batch_transaction:
            raise ValueError(f"consumer {self.name}: a batch_handler needs batch_transaction")

    @property
    def dlq(self) -> str:
        return self.topic.dlq

    def load_handler(self) -> Handler:
        """Import the handler function named by `handler`."""
        handler: Handler = _import(self.handler)
        return handler

    def load_batch_handler(self) -> BatchHandler | None:
        """Import the batch handler named by `batch_handler`, if the spec has one."""
        if not self.batch_handler:
            return None
        batch_handler: BatchHandler = _import(self.batch_handler)
        return batch_handler


def _import(dotted_path: str) -> Any:
    module_path, _, attribute = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module_path), attribute)


CONSUMERS: dict[str, ConsumerSpec] = {
    spec.name: spec
    for spec in (
        ConsumerSpec(
            name="purchases",
            topic=Topic.PURCHASE,
            group_id="orchestrator",
            handler="orchestrator_svc.sagas.consumers.handle_purchase_created",
            batch_transaction=True,
            batch_handler="orchestrator_svc.sagas.consumers.handle_purchases_created",
        ),
        ConsumerSpec(
            name="purchase-results",
            topic=Topic.PURCHASE_RESULT,
            group_id="purchase",
            handler="purchase_svc.purchases.consumers.handle_purchase_result",
            batch_transaction=True,
            batch_handler="purchase_svc.purchases.consumers.handle_purchase_results",
        ),
    )
}
