import json
import uuid

import pytest

from common.kafka.messages import PoisonMessage
from common.testing import kafka_message
from purchase_svc.purchases.consumers import handle_purchase_result
from purchase_svc.purchases.models import PurchaseStepEvent


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
