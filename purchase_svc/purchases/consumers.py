"""Kafka handlers of the purchase service (registered in common.contract.consumers)."""

from common.contract.events import PurchaseResult, parse_purchase_result
from common.kafka.messages import ConsumedMessage, PoisonMessage
from purchase_svc.purchases.services import purchase_step_record, purchase_steps_record


def handle_purchase_result(message: ConsumedMessage) -> None:
    """`purchase-result` topic: record the step change and apply the purchase's status
    (idempotent on message id, monotonic by sequence)."""
    message_id, result = _step(message)
    purchase_step_record(message_id=message_id, result=result)


def handle_purchase_results(messages: list[ConsumedMessage]) -> None:
    """`purchase-result` topic, a batch at once (the loop's batch handler, inside its
    transaction): the same outcome as `handle_purchase_result` on each message in turn,
    in a constant number of statements. A message that cannot be applied raises
    `PoisonMessage` before anything is written; the loop then goes one by one, which
    sends that message alone to the DLQ."""
    purchase_steps_record(steps=[_step(message) for message in messages])


def _step(message: ConsumedMessage) -> tuple[str, PurchaseResult]:
    if not message.message_id:
        raise PoisonMessage("no message-id header: cannot be applied exactly once")
    return message.message_id, parse_purchase_result(message.json())
