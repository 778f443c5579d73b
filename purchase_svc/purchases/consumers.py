"""Kafka handlers of the purchase service (registered in common.kafka.registry)."""

from common.events import parse_purchase_result
from common.kafka.messages import ConsumedMessage, PoisonMessage
from purchase_svc.purchases.services import purchase_step_record


def handle_purchase_result(message: ConsumedMessage) -> None:
    """`purchase-result` topic: record the step change and apply the purchase's status
    (idempotent on message id, monotonic by sequence)."""
    if not message.message_id:
        raise PoisonMessage("no message-id header: cannot be applied exactly once")
    purchase_step_record(
        message_id=message.message_id, result=parse_purchase_result(message.json())
    )
