"""Kafka handlers of the orchestrator (registered in common.kafka.registry)."""

from common.events import parse_purchase_created
from common.kafka.messages import ConsumedMessage
from orchestrator_svc.sagas.services import saga_start


def handle_purchase_created(message: ConsumedMessage) -> None:
    """`purchase` topic: start the purchase's saga (idempotent on purchase id).

    The saga row is committed before this returns (so the loop may commit the offset);
    the first advance is enqueued only after that commit.
    """
    saga_start(event=parse_purchase_created(message.json()))
