import json
import random
import uuid
from typing import Any

import pytest

from common.contract.consumers import CONSUMERS
from common.kafka.messages import PoisonMessage
from common.testing import kafka_message
from purchase_svc.purchases.consumers import handle_purchase_result, handle_purchase_results
from purchase_svc.purchases.models import Purchase, PurchaseStepEvent
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
        (
            json.dumps(
                {
                    "purchase_id": str(uuid.uuid4()),
                    "step": "CREATE_ORDER",
                    "status": "RETRY",
                    "retry_at": "soon",
                }
            ).encode(),
            "1",
        ),
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


# ------------------------------------------------------------------ a batch at once


def test_the_purchase_results_consumer_applies_batches_with_this_handler() -> None:
    spec = CONSUMERS["purchase-results"]

    assert spec.batch_transaction
    assert spec.load_handler() is handle_purchase_result
    assert spec.load_batch_handler() is handle_purchase_results


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "message_id"),
    [(result(str(uuid.uuid4())), None), (b"{not json", "2"), (result("not-a-uuid"), "3")],
)
def test_a_batch_with_a_message_that_cannot_be_applied_is_poison_and_writes_nothing(
    value: bytes, message_id: str | None
) -> None:
    good = kafka_message(result(str(uuid.uuid4())), message_id="1")

    with pytest.raises(PoisonMessage):
        handle_purchase_results([good, kafka_message(value, message_id=message_id)])

    assert not PurchaseStepEvent.objects.exists()


@pytest.mark.django_db
def test_a_batch_records_each_message_once_and_applies_the_newest_sequence() -> None:
    first, second = purchase_row(7), purchase_row(8)
    a, b = str(first.id), str(second.id)
    batch = [
        kafka_message(outcome(a, 2, "PENDING"), message_id="a2"),
        kafka_message(outcome(b, 1, "PENDING", "EXECUTE"), message_id="b1"),
        kafka_message(outcome(a, 4, "COMPLETED"), message_id="a4"),
        kafka_message(outcome(a, 3, "PENDING"), message_id="a3"),  # late: recorded only
        kafka_message(outcome(a, 2, "PENDING"), message_id="a2"),  # the relay sent it twice
        kafka_message(outcome(b, 2, "NEEDS_ATTENTION", "ROLLBACK_FAILED"), message_id="b2"),
    ]

    handle_purchase_results(batch)
    handle_purchase_results(batch)  # the whole batch again: changes nothing

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.last_sequence) == ("COMPLETED", 4)
    assert (second.status, second.last_sequence) == ("NEEDS_ATTENTION", 2)
    recorded = list(PurchaseStepEvent.objects.values_list("message_id", flat=True))
    assert recorded == ["a2", "b1", "a4", "a3", "b2"]  # arrival order, once each


@pytest.mark.django_db
def test_an_older_batch_never_moves_a_purchase_back() -> None:
    purchase = purchase_row(7)
    pid = str(purchase.id)

    handle_purchase_results([kafka_message(outcome(pid, 5, "FAILED", "ROLLBACK"), message_id="5")])
    handle_purchase_results(
        [
            kafka_message(outcome(pid, 2, "PENDING"), message_id="2"),
            kafka_message(outcome(pid, 4, "NEEDS_ATTENTION", "ROLLBACK_FAILED"), message_id="4"),
        ]
    )

    purchase.refresh_from_db()
    assert (purchase.status, purchase.last_sequence) == ("FAILED", 5)
    assert PurchaseStepEvent.objects.filter(purchase_id=pid).count() == 3


@pytest.mark.django_db
def test_a_batch_records_the_steps_of_an_unknown_purchase_anyway() -> None:
    unknown = str(uuid.uuid4())

    handle_purchase_results([kafka_message(outcome(unknown, 1, "COMPLETED"), message_id="u1")])

    assert PurchaseStepEvent.objects.get().purchase_id == uuid.UUID(unknown)
    assert not Purchase.objects.exists()


STATUSES = ["PENDING", "COMPLETED", "FAILED", "NEEDS_ATTENTION"]


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(8))
def test_batches_end_every_purchase_where_one_by_one_does(seed: int) -> None:
    """Given the same stream of results (repeats, equal and out-of-order sequences, several
    purchases and an unknown one), split into random batches for one copy of the purchases
    and handled one by one for another: both copies end alike, step for step."""
    rng = random.Random(seed)
    names = ["p0", "p1", "p2", "unknown"]
    stream: list[tuple[str, str, int, str]] = []  # (purchase, message id, sequence, status)
    for name in names:
        for n in range(rng.randint(1, 6)):
            stream.append((name, f"{name}-{n}", rng.randint(1, 5), rng.choice(STATUSES)))
    stream += rng.sample(stream, k=len(stream) // 3)  # redeliveries
    rng.shuffle(stream)
    copies = {
        path: {name: str(purchase_row(7).id) for name in names[:-1]}
        | {"unknown": str(uuid.uuid4())}
        for path in ("batch", "single")
    }

    def message(path: str, name: str, message_id: str, sequence: int, status: str) -> Any:
        value = outcome(copies[path][name], sequence, status)
        return kafka_message(value, message_id=f"{path}-{message_id}")

    position = 0
    while position < len(stream):
        size = rng.randint(1, 6)
        handle_purchase_results([message("batch", *e) for e in stream[position : position + size]])
        position += size
    for entry in stream:
        handle_purchase_result(message("single", *entry))

    def story(path: str) -> dict[str, Any]:
        purchases = {str(p.id): p for p in Purchase.objects.filter(id__in=copies[path].values())}
        return {
            name: (
                (purchases[pid].status, purchases[pid].last_sequence) if pid in purchases else None,
                [
                    (m.removeprefix(f"{path}-"), s, ps)
                    for m, s, ps in PurchaseStepEvent.objects.filter(purchase_id=pid)
                    .order_by("id")
                    .values_list("message_id", "sequence", "purchase_status")
                ],
            )
            for name, pid in copies[path].items()
        }

    assert story("batch") == story("single")
