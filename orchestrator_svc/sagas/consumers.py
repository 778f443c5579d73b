"""Kafka handlers of the orchestrator (registered in common.kafka.registry)."""

from common.events import parse_purchase_created
from common.kafka.messages import ConsumedMessage
from orchestrator_svc.sagas.services import saga_start


def handle_purchase_created(message: ConsumedMessage) -> None:
    """`purchase` topic: start the purchase's saga (idempotent on purchase id)."""
    saga_start(event=parse_purchase_created(message.json()))
