"""Kafka handlers of the orchestrator (registered in common.contract.consumers).

The `purchase` topic carries two messages, keyed by purchase id (so a purchase's
cancel follows its PurchaseCreated in the same partition): PurchaseCreated starts the
saga, PurchaseCancelRequested cancels it (services.sagas_cancel).
"""

from common.contract.events import (
    PurchaseCancelRequested,
    PurchaseCreated,
    parse_purchase_message,
)
from common.kafka.messages import ConsumedMessage
from orchestrator_svc.sagas.services import Started, saga_start, sagas_cancel, sagas_start

TRACE_HEADERS = ("traceparent", "tracestate")


def handle_purchase_message(message: ConsumedMessage) -> None:
    """`purchase` topic, one message: start the purchase's saga, or cancel it
    (both idempotent on purchase id).

    The saga row is committed before this returns (so the loop may commit the offset);
    the advance is enqueued only after that commit.
    """
    event = parse_purchase_message(message.json())
    if isinstance(event, PurchaseCancelRequested):
        sagas_cancel(cancels=[event])
    else:
        saga_start(event=event)


def handle_purchase_messages(messages: list[ConsumedMessage]) -> None:
    """A batch of the `purchase` topic: start every saga with one statement, then apply
    every cancel with one (the same effect as in offset order: a cancel that precedes
    its saga's start is kept and applied when the saga starts), and hand the sagas to
    the workers after commit. Any message that cannot be parsed raises PoisonMessage,
    and the loop handles the batch one by one instead."""
    starts: list[Started] = []
    cancels: list[PurchaseCancelRequested] = []
    for message in messages:
        event = parse_purchase_message(message.json())
        if isinstance(event, PurchaseCreated):
            starts.append(Started(event=event, trace=_trace_headers(message)))
        else:
            cancels.append(event)
    if starts:
        sagas_start(starts=starts)
    if cancels:
        sagas_cancel(cancels=cancels)


def _trace_headers(message: ConsumedMessage) -> dict[str, str]:
    """The producer's trace context: every run of the saga continues that trace."""
    return {name: value for name in TRACE_HEADERS if (value := message.header(name)) is not None}
