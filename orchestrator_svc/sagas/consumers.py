"""Kafka handlers of the orchestrator (registered in common.contract.consumers)."""

from common.contract.events import parse_purchase_created
from common.kafka.messages import ConsumedMessage
from orchestrator_svc.sagas.services import Started, saga_start, sagas_start

TRACE_HEADERS = ("traceparent", "tracestate")


def handle_purchase_created(message: ConsumedMessage) -> None:
    """`purchase` topic: start the purchase's saga (idempotent on purchase id).

    The saga row is committed before this returns (so the loop may commit the offset);
    the first advance is enqueued only after that commit.
    """
    saga_start(event=parse_purchase_created(message.json()))


def handle_purchases_created(messages: list[ConsumedMessage]) -> None:
    """A batch of the `purchase` topic: start every saga with one INSERT, hand them to
    the workers in batches after commit. Any message that cannot be parsed raises
    PoisonMessage, and the loop handles the batch one by one instead."""
    sagas_start(
        starts=[
            Started(
                event=parse_purchase_created(message.json()),
                trace=_trace_headers(message),
            )
            for message in messages
        ]
    )


def _trace_headers(message: ConsumedMessage) -> dict[str, str]:
    """The producer's trace context: every run of the saga continues that trace."""
    return {name: value for name in TRACE_HEADERS if (value := message.header(name)) is not None}
