"""Every Kafka consumer of the system, declared once (Sentry style).

A process runs one of them by name: `manage.py kafka_consume <name>`; the topology's
worker commands name them through the constants below.

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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.contract.topics import Topic

if TYPE_CHECKING:  # only for types: common.kafka's loop imports this module
    from common.kafka.messages import ConsumedMessage

Handler = Callable[["ConsumedMessage"], None]
BatchHandler = Callable[[list["ConsumedMessage"]], None]


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer: what it reads, as which group, and who handles the messages."""

    name: str
    topic: Topic
    group_id: str
    # A function answering the Handler, so the handler is imported only where it runs.
    handler: Callable[[], Handler]
    batch_size: int = 100
    # Handle each batch in one database transaction (falling back to one per message
    # when anything in it raises): for handlers whose cost is mostly the commit.
    batch_transaction: bool = False
    # A function answering the BatchHandler: one call per batch, inside its transaction.
    batch_handler: Callable[[], BatchHandler] | None = None

    def __post_init__(self) -> None:
        if self.batch_handler and not self.batch_transaction:
            raise ValueError(f"consumer {self.name}: a batch_handler needs batch_transaction")

    @property
    def dlq(self) -> str:
        return self.topic.dlq

    def load_handler(self) -> Handler:
        """Import and answer the handler."""
        return self.handler()

    def load_batch_handler(self) -> BatchHandler | None:
        """Import and answer the batch handler, if the spec has one."""
        return self.batch_handler() if self.batch_handler else None


# The handlers are imported inside these functions, when their consumer starts: each
# process installs only its own service's models, the deploy generators read this
# registry without Django, and every handler imports common.kafka, which imports this.


def _handle_purchase_message() -> Handler:
    from orchestrator_svc.sagas.consumers import handle_purchase_message

    return handle_purchase_message


def _handle_purchase_messages() -> BatchHandler:
    from orchestrator_svc.sagas.consumers import handle_purchase_messages

    return handle_purchase_messages


def _handle_purchase_result() -> Handler:
    from purchase_svc.purchases.consumers import handle_purchase_result

    return handle_purchase_result


def _handle_purchase_results() -> BatchHandler:
    from purchase_svc.purchases.consumers import handle_purchase_results

    return handle_purchase_results


PURCHASES = ConsumerSpec(
    name="purchases",
    topic=Topic.PURCHASE,
    group_id="orchestrator",
    handler=_handle_purchase_message,
    batch_transaction=True,
    batch_handler=_handle_purchase_messages,
)
PURCHASE_RESULTS = ConsumerSpec(
    name="purchase-results",
    topic=Topic.PURCHASE_RESULT,
    group_id="purchase",
    handler=_handle_purchase_result,
    batch_transaction=True,
    batch_handler=_handle_purchase_results,
)

CONSUMERS: dict[str, ConsumerSpec] = {spec.name: spec for spec in (PURCHASES, PURCHASE_RESULTS)}
