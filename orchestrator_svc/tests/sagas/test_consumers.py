import json
import uuid
from typing import Any

import pytest

from common.contract.consumers import CONSUMERS
from common.kafka.messages import PoisonMessage
from common.testing import kafka_message
from orchestrator_svc.sagas.consumers import handle_purchase_message, handle_purchase_messages
from orchestrator_svc.sagas.models import PendingCancel, Saga, SagaState


def purchase_created(purchase_id: str, **changes: object) -> bytes:
    body = {
        "purchase_id": purchase_id,
        "customer_id": 42,
        "items": [
            {"product_id": 1, "quantity": 4, "unit_price": 1390},
            {"product_id": 2, "quantity": 5, "unit_price": 3780, "name": ""},
        ],
        "amount": 24460,
        "currency_code": "VND",
        **changes,
    }
    return json.dumps(body).encode()


@pytest.mark.django_db
def test_a_purchase_created_event_starts_one_saga_even_when_delivered_twice(
    enqueued: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    purchase_id = str(uuid.uuid4())

    with django_capture_on_commit_callbacks(execute=True):
        handle_purchase_message(kafka_message(purchase_created(purchase_id)))
    handle_purchase_message(kafka_message(purchase_created(purchase_id), offset=1))

    saga = Saga.objects.get()
    assert str(saga.purchase_id) == purchase_id
    assert (saga.customer_id, saga.state) == (42, SagaState.STARTED)
    line = {"product_id": 2, "quantity": 5, "unit_price": 3780, "name": ""}
    assert saga.payload["items"][1] == line
    # Handed to a worker once the row was committed.
    assert enqueued == [purchase_id]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        purchase_created("not-a-uuid"),
        purchase_created(str(uuid.uuid4()), items=[]),
        purchase_created(
            str(uuid.uuid4()), items=[{"product_id": 1, "quantity": 0, "unit_price": 1390}]
        ),
        purchase_created(str(uuid.uuid4()), amount=24461),  # not the sum of the lines
        purchase_created(str(uuid.uuid4()), customer_id="42"),
    ],
)
def test_a_malformed_event_is_poison_and_starts_nothing(value: bytes, enqueued: list[str]) -> None:
    with pytest.raises(PoisonMessage):
        handle_purchase_message(kafka_message(value))
    assert not Saga.objects.exists()
    assert enqueued == []


def test_the_purchases_consumer_runs_these_handlers_in_batch_transactions() -> None:
    spec = CONSUMERS["purchases"]

    assert spec.batch_transaction
    assert spec.load_handler() is handle_purchase_message
    assert spec.load_batch_handler() is handle_purchase_messages


def cancel_requested(purchase_id: str, **changes: object) -> bytes:
    body = {
        "type": "PurchaseCancelRequested",
        "purchase_id": purchase_id,
        "customer_id": 42,
        "requested_by": "customer",
        **changes,
    }
    return json.dumps(body).encode()


@pytest.mark.django_db
def test_a_cancel_message_records_the_cancel_once_and_hands_the_saga_over(
    enqueued: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    purchase_id = str(uuid.uuid4())
    handle_purchase_message(kafka_message(purchase_created(purchase_id)))
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        handle_purchase_message(kafka_message(cancel_requested(purchase_id), offset=1))
    first = Saga.objects.get().cancel_requested_at
    handle_purchase_message(kafka_message(cancel_requested(purchase_id), offset=2))

    saga = Saga.objects.get()
    assert first is not None and saga.cancel_requested_at == first
    assert (saga.cancel_requested_by, saga.state) == ("customer", SagaState.STARTED)
    assert enqueued == [purchase_id]


@pytest.mark.django_db
def test_a_mixed_batch_starts_and_cancels_as_in_offset_order(
    enqueued: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    cancelled, kept, early = (str(uuid.uuid4()) for _ in range(3))
    values = [
        purchase_created(cancelled),
        cancel_requested(cancelled),
        purchase_created(kept),
        cancel_requested(early),  # its PurchaseCreated comes later
    ]

    with django_capture_on_commit_callbacks(execute=True):
        handle_purchase_messages(
            [kafka_message(value, offset=offset) for offset, value in enumerate(values)]
        )
    handle_purchase_messages([kafka_message(purchase_created(early), offset=4)])

    rows = {str(saga.purchase_id): saga for saga in Saga.objects.all()}
    assert rows[cancelled].cancel_requested_at is not None
    assert rows[kept].cancel_requested_at is None
    assert rows[early].cancel_requested_at is not None  # started cancelled
    assert not PendingCancel.objects.exists()
    assert sorted(set(enqueued)) == sorted([cancelled, kept])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        cancel_requested(str(uuid.uuid4()), type="PurchaseRefunded"),
        cancel_requested(str(uuid.uuid4()), requested_by="robot"),
        cancel_requested(str(uuid.uuid4()), customer_id=0),
        cancel_requested("not-a-uuid"),
    ],
)
def test_a_malformed_cancel_is_poison_and_changes_nothing(value: bytes) -> None:
    with pytest.raises(PoisonMessage):
        handle_purchase_message(kafka_message(value))
    with pytest.raises(PoisonMessage):
        handle_purchase_messages([kafka_message(value)])
    assert not PendingCancel.objects.exists()
