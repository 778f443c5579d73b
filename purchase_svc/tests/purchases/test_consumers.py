import json
import uuid

import pytest

from common.kafka.messages import PoisonMessage
from common.testing import kafka_message
from purchase_svc.purchases.consumers import handle_purchase_result
from purchase_svc.purchases.models import PurchaseStepEvent
from purchase_svc.tests.conftest import purchase_row


def result(purchase_id: str, step: str = "CREATE_ORDER", status: str = "SUCCESS") -> bytes:
    return json.dumps({"purchase_id": purchase_id, "step": step, "status": status}).encode()


@pytest.mark.django_db
def test_a_step_change_is_recorded_once_per_message_id() -> None:
    purchase_id = str(uuid.uuid4())

    handle_purchase_result(kafka_message(result(purchase_id), message_id="11"))
    handle_purchase_result(kafka_message(result(purchase_id), message_id="11"))
    handle_purchase_result(kafka_message(result(purchase_id, "CREATE_PAYMENT"), message_id="12"))

    events = list(PurchaseStepEvent.objects.values_list("step", "status"))
    assert events == [("CREATE_ORDER", "SUCCESS"), ("CREATE_PAYMENT", "SUCCESS")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "message_id"),
    [
        (result(str(uuid.uuid4())), None),
        (result(str(uuid.uuid4()), step="SHIP_IT"), "1"),
        (result(str(uuid.uuid4()), status="DONE"), "1"),
        (b"[]", "1"),
    ],
)
def test_a_result_that_cannot_be_applied_exactly_once_is_poison(
    value: bytes, message_id: str | None
) -> None:
    with pytest.raises(PoisonMessage):
        handle_purchase_result(kafka_message(value, message_id=message_id))
    assert not PurchaseStepEvent.objects.exists()


def outcome(
    purchase_id: str, sequence: int, purchase_status: str, status: str = "SUCCESS"
) -> bytes:
    return json.dumps(
        {
            "purchase_id": purchase_id,
            "step": "CREATE_PAYMENT",
            "status": status,
            "purchase_status": purchase_status,
            "sequence": sequence,
            "attempt": 2,
            "error": "",
        }
    ).encode()


@pytest.mark.django_db
def test_the_purchase_takes_the_status_of_the_newest_sequence_whatever_the_arrival_order() -> None:
    purchase = purchase_row(7)
    pid = str(purchase.id)

    handle_purchase_result(kafka_message(outcome(pid, 3, "COMPLETED"), message_id="3"))
    handle_purchase_result(kafka_message(outcome(pid, 1, "PENDING", "EXECUTE"), message_id="1"))
    handle_purchase_result(kafka_message(outcome(pid, 2, "PENDING"), message_id="2"))
    handle_purchase_result(kafka_message(outcome(pid, 3, "COMPLETED"), message_id="3"))

    purchase.refresh_from_db()
    assert (purchase.status, purchase.last_sequence) == ("COMPLETED", 3)
    steps = PurchaseStepEvent.objects.filter(purchase_id=pid)
    assert sorted(steps.values_list("sequence", flat=True)) == [1, 2, 3]
    assert set(steps.values_list("attempt", flat=True)) == {2}


@pytest.mark.django_db
def test_needs_attention_then_a_later_fix_ends_failed() -> None:
    purchase = purchase_row(7)
    pid = str(purchase.id)

    handle_purchase_result(
        kafka_message(outcome(pid, 6, "NEEDS_ATTENTION", "ROLLBACK_FAILED"), message_id="6")
    )
    handle_purchase_result(kafka_message(outcome(pid, 7, "FAILED", "ROLLBACK"), message_id="7"))

    purchase.refresh_from_db()
    assert purchase.status == "FAILED"
