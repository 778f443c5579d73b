"""Writes of the purchase service.

A purchase is written once, by `purchase_create`, together with the PurchaseCreated
event in the outbox (one transaction: the event leaves if and only if the purchase
exists). `purchase_cancel` records a customer's cancel with its PurchaseCancelRequested
the same way. Its status changes only by `purchase_step_record` (one event) and
`purchase_steps_record` (a batch), fed by the orchestrator's `purchase-result` events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from common.contract.events import (
    CancelRequester,
    PurchaseCancelRequested,
    PurchaseCreated,
    PurchaseItem,
    PurchaseResult,
    PurchaseStatus,
)
from common.contract.topics import Topic
from common.errors import ApplicationError, ErrorCode
from common.ids import MAX_INT64
from common.outbox.services import OutboxEvent, Statement, outbox_enqueue_many
from purchase_svc.purchases import selectors
from purchase_svc.purchases.clients import products_check
from purchase_svc.purchases.conf import config
from purchase_svc.purchases.idempotency import replay_of
from purchase_svc.purchases.metrics import count_finished_on_commit
from purchase_svc.purchases.models import Purchase, PurchaseCancelKey, PurchaseStepEvent

# pg_notify channel: payload = purchase id, delivered at commit of a recorded step.
EVENTS_CHANNEL = "purchase_events"


@dataclass(frozen=True)
class PurchaseLine:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class PurchaseCreation:
    """The outcome of a POST: the purchase, and whether it was an idempotent replay."""

    purchase: Purchase
    replayed: bool


FirstAnswer = Callable[[Purchase], tuple[int, str]]
"""(status, body) of the request that creates a purchase, stored with it so that a
retry with its Idempotency-Key answers the same bytes. The API says what it is."""


def lines_merge(lines: Iterable[PurchaseLine]) -> list[PurchaseLine]:
    """One line per product, quantities summed, in order of first appearance.

    INVALID_INPUT when a product's total exceeds config().max_quantity.
    """
    totals: dict[int, int] = {}
    for line in lines:
        totals[line.product_id] = totals.get(line.product_id, 0) + line.quantity
    limit = config().max_quantity
    too_many = sorted(p for p, q in totals.items() if q > limit)
    if too_many:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT,
            "The request has invalid fields.",
            {
                "fields": {
                    "order_items": [
                        f"At most {limit} units of product {p} per purchase." for p in too_many
                    ]
                }
            },
        )
    return [PurchaseLine(p, q) for p, q in totals.items()]


def purchase_create(
    *,
    customer_id: int,
    lines: Iterable[PurchaseLine],
    currency_code: str,
    first_answer: FirstAnswer,
    idempotency_key: str | None = None,
    request_fingerprint: str = "",
) -> PurchaseCreation:
    """Price the lines by CheckProducts, store the purchase PENDING with its
    PurchaseCreated (unit prices and product names included) in the outbox (one
    transaction), and answer it. `first_answer(purchase)` is stored with it.

    With an `idempotency_key`, a concurrent request that stored the same key first wins:
    this one rolls back and answers that purchase (replayed), or 422 if its body differs.
    Raises ApplicationError NOT_FOUND (unknown product), UNAVAILABLE (product service
    down; nothing written), INVALID_INPUT.
    """
    merged = lines_merge(lines)
    if not merged:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "A purchase needs at least one line.")
    quotes = products_check(items=[(line.product_id, line.quantity) for line in merged])
    # The prices the customer is shown now travel with the saga (PurchaseCreated): the
    # order records them and the payment charges their sum, so the two always agree.
    # So do the names, which the order's lines keep.
    priced = tuple(
        PurchaseItem(
            line.product_id,
            line.quantity,
            quotes[line.product_id].price,
            quotes[line.product_id].name,
        )
        for line in merged
    )
    amount = sum(item.unit_price * item.quantity for item in priced)
    # int64: what the order and payment services can hold.
    if amount > MAX_INT64:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "The purchase's amount is too large.")
    purchase_id = uuid.uuid4()
    now = timezone.now()
    purchase = Purchase(
        id=purchase_id,
        customer_id=customer_id,
        # The purchase API shows a line's product, quantity and price, not its name.
        items=[
            {"product_id": i.product_id, "quantity": i.quantity, "unit_price": i.unit_price}
            for i in priced
        ],
        amount=amount,
        currency_code=currency_code,
        status=PurchaseStatus.PENDING.value,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
        created_at=now,
        updated_at=now,
    )
    purchase.response_status, purchase.response_body = first_answer(purchase)
    event = PurchaseCreated(
        purchase_id=str(purchase_id),
        customer_id=customer_id,
        items=priced,
        amount=amount,
        currency_code=currency_code,
    )
    try:
        with transaction.atomic():
            # The purchase, its event and the relay's wake-up: one round trip.
            outbox_enqueue_many(
                [OutboxEvent(topic=Topic.PURCHASE, key=str(purchase_id), payload=event.to_json())],
                along_with=[_purchase_insert(purchase)],
            )
    except IntegrityError:
        if idempotency_key is None:
            raise
        # A concurrent request with the same key committed first (we waited on its
        # unique-index entry): answer what it answered.
        earlier = purchase_replay(
            customer_id=customer_id,
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint,
        )
        if earlier is None:
            raise
        return PurchaseCreation(purchase=earlier, replayed=True)
    purchase._state.adding, purchase._state.db = False, "default"  # saved, as by save()
    return PurchaseCreation(purchase=purchase, replayed=False)


def _purchase_insert(purchase: Purchase) -> Statement:
    """The INSERT of a new purchase, as plain SQL: it travels with its outbox row in one
    round trip (the ORM's save would be a round trip, and more Python than the SQL).
    Every column of the model, each value prepared by its field as save() would."""
    fields = Purchase._meta.concrete_fields
    return (
        f"INSERT INTO {Purchase._meta.db_table} ({', '.join(str(f.column) for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})",
        [f.get_db_prep_save(getattr(purchase, f.attname), connection) for f in fields],
    )


def purchase_replay(
    *, customer_id: int, idempotency_key: str, request_fingerprint: str
) -> Purchase | None:
    """The purchase an earlier request with this key created, to answer again; None
    when there is none. Raises IdempotencyKeyReused (422) when that request had
    another body."""
    return replay_of(
        selectors.purchase_find_by_key(customer_id=customer_id, idempotency_key=idempotency_key),
        key=idempotency_key,
        fingerprint=request_fingerprint,
    )


@dataclass(frozen=True)
class PurchaseCancellation:
    """The outcome of a cancel: the purchase, the answer to send (status, body), and
    whether it is a replay of a keyed cancel's first answer."""

    purchase: Purchase
    answer: tuple[int, str]
    replayed: bool


def purchase_cancel(
    *,
    purchase: Purchase,
    answer: FirstAnswer,
    idempotency_key: str | None = None,
    request_fingerprint: str = "",
    requested_by: CancelRequester = CancelRequester.CUSTOMER,
) -> PurchaseCancellation:
    """Ask the saga of `purchase` (the caller's own) to stop and undo what it did.

    While the purchase is PENDING, the first request records `cancel_requested_at` and,
    in the same transaction, the PurchaseCancelRequested outbox row; a later one
    changes nothing (the saga has been asked already). CANCELLED: nothing to do either.
    `answer(purchase)` is the answer, stored under `idempotency_key` so that a retry
    gets it byte for byte. Raises ApplicationError FAILED_PRECONDITION (409) for a
    purchase that COMPLETED (details.reason "purchase_completed": undoing it is a
    refund, another flow) or ended otherwise ("purchase_ended"), and
    IdempotencyKeyReused (422) for a key another request used.
    """
    if idempotency_key is not None:
        earlier = _cancel_replay(
            customer_id=purchase.customer_id,
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint,
        )
        if earlier is not None:
            return earlier
    try:
        with transaction.atomic():
            # The row lock orders this against a concurrent cancel and against the
            # consumer applying a final status: one outbox row, and never after the end.
            locked = Purchase.objects.select_for_update().get(id=purchase.id)
            _refuse_cancel_of_ended(locked)
            if locked.status == PurchaseStatus.PENDING and locked.cancel_requested_at is None:
                locked.cancel_requested_at = locked.updated_at = timezone.now()
                locked.save(update_fields=["cancel_requested_at", "updated_at"])
                event = PurchaseCancelRequested(
                    purchase_id=str(locked.id),
                    customer_id=locked.customer_id,
                    requested_by=requested_by,
                )
                outbox_enqueue_many(
                    [OutboxEvent(topic=Topic.PURCHASE, key=str(locked.id), payload=event.to_json())]
                )
            status, body = answer(locked)
            if idempotency_key is not None:
                PurchaseCancelKey.objects.create(
                    customer_id=locked.customer_id,
                    idempotency_key=idempotency_key,
                    purchase=locked,
                    request_fingerprint=request_fingerprint,
                    response_status=status,
                    response_body=body,
                )
    except IntegrityError:
        if idempotency_key is None:
            raise
        # A concurrent cancel with the same key committed first: answer what it answered.
        earlier = _cancel_replay(
            customer_id=purchase.customer_id,
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint,
        )
        if earlier is None:
            raise
        return earlier
    return PurchaseCancellation(purchase=locked, answer=(status, body), replayed=False)


def _refuse_cancel_of_ended(purchase: Purchase) -> None:
    if purchase.status == PurchaseStatus.COMPLETED:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION,
            "The purchase is completed and cannot be cancelled; giving the money back is a"
            " refund, a different flow.",
            {"reason": "purchase_completed", "status": purchase.status},
        )
    if purchase.status in (PurchaseStatus.FAILED, PurchaseStatus.NEEDS_ATTENTION):
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION,
            f"The purchase already ended ({purchase.status}); there is nothing to cancel.",
            {"reason": "purchase_ended", "status": purchase.status},
        )


def _cancel_replay(
    *, customer_id: int, idempotency_key: str, request_fingerprint: str
) -> PurchaseCancellation | None:
    """The first answer of an earlier cancel with this key, or None when the key is new.
    IdempotencyKeyReused when the key cancelled another purchase. (Cancels keep their
    keys apart from the POST's, as a key names a retry of one operation: checking both
    would cost every POST a query.)"""
    earlier = replay_of(
        selectors.cancel_key_find(customer_id=customer_id, idempotency_key=idempotency_key),
        key=idempotency_key,
        fingerprint=request_fingerprint,
    )
    if earlier is None:
        return None
    return PurchaseCancellation(
        purchase=earlier.purchase,
        answer=(earlier.response_status, earlier.response_body),
        replayed=True,
    )


@transaction.atomic
def purchase_step_record(*, message_id: str, result: PurchaseResult) -> bool:
    """Store one step change once and apply its `purchase_status`; answer whether it was new.

    In one transaction: the step (unique on the producer's message id, so a redelivery
    is a no-op), the purchase's status if the event's sequence is newer than the last
    applied one (an older or repeated event never moves it back), and a NOTIFY on
    `purchase_events` that PostgreSQL delivers at commit to wake the purchase's event
    streams. A step of a purchase unknown here is recorded all the same.
    """
    _, created = PurchaseStepEvent.objects.get_or_create(
        message_id=message_id,
        defaults={
            "purchase_id": result.purchase_id,
            "step": result.step.value,
            "status": result.status.value,
            "purchase_status": result.purchase_status.value,
            "sequence": result.sequence,
            "attempt": result.attempt,
            "error": result.error,
            "retry_at": result.retry_at or None,
        },
    )
    if not created:
        return False
    applied = Purchase.objects.filter(
        id=result.purchase_id, last_sequence__lt=result.sequence
    ).update(
        status=result.purchase_status.value,
        reason=result.reason,
        last_sequence=result.sequence,
        updated_at=timezone.now(),
    )
    if applied:
        count_finished_on_commit([(result.purchase_status.value, result.reason)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [EVENTS_CHANNEL, str(result.purchase_id)])
    return True


@transaction.atomic(savepoint=False)
def purchase_steps_record(*, steps: Iterable[tuple[str, PurchaseResult]]) -> list[str]:
    """Record many step changes with the outcome of `purchase_step_record` applied to each
    in turn, in at most three statements; answer the message ids that were new, in order.

    `steps` are (message id, result) pairs in arrival order. One INSERT of every step,
    skipping the message ids already recorded (`ON CONFLICT DO NOTHING RETURNING` tells
    which were new); one UPDATE of the purchases of the new steps, each to its newest new
    sequence (the first of equal sequences, as one by one) where that is newer than the
    applied one (RETURNING what it applied, for the finished-purchases metric); one
    SELECT that sends a `pg_notify` per purchase with a new step. Runs in the caller's
    transaction when there is one (the consumer's batch), without a savepoint.
    """
    unique: dict[str, PurchaseResult] = {}
    for message_id, result in steps:
        unique.setdefault(message_id, result)  # a repeat within the batch: the first stays
    if not unique:
        return []
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO purchase_step_event (message_id, purchase_id, step, status,"
            " purchase_status, sequence, attempt, error, retry_at, received_at) VALUES "
            + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s::timestamptz, %s)"] * len(unique))
            + " ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
            [
                value
                for message_id, r in unique.items()
                for value in (
                    message_id,
                    r.purchase_id,
                    r.step.value,
                    r.status.value,
                    r.purchase_status.value,
                    r.sequence,
                    r.attempt,
                    r.error,
                    r.retry_at or None,
                    now,
                )
            ],
        )
        inserted = {row[0] for row in cursor.fetchall()}
        new = [(message_id, r) for message_id, r in unique.items() if message_id in inserted]
        if not new:
            return []
        newest: dict[str, PurchaseResult] = {}
        for _, r in new:
            if r.purchase_id not in newest or r.sequence > newest[r.purchase_id].sequence:
                newest[r.purchase_id] = r
        purchase_ids = sorted(newest)  # one lock order, whoever else updates these rows
        cursor.execute(
            "UPDATE purchase AS p SET status = v.status, reason = v.reason,"
            " last_sequence = v.sequence, updated_at = %s FROM (VALUES "
            + ", ".join(["(%s::uuid, %s::integer, %s::varchar, %s::varchar)"] * len(purchase_ids))
            + ") AS v (id, sequence, status, reason)"
            " WHERE p.id = v.id AND p.last_sequence < v.sequence RETURNING v.status, v.reason",
            [
                now,
                *(
                    value
                    for pid in purchase_ids
                    for value in (
                        pid,
                        newest[pid].sequence,
                        newest[pid].purchase_status.value,
                        newest[pid].reason,
                    )
                ),
            ],
        )
        count_finished_on_commit(cursor.fetchall())
        cursor.execute(
            "SELECT pg_notify(%s, purchase_id) FROM unnest(%s::text[]) AS purchase_id",
            [EVENTS_CHANNEL, purchase_ids],
        )
    return [message_id for message_id, _ in new]
