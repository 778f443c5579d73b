"""Cancelling a purchase in-process (issue 21): the API, its outbox row, idempotency, and
the final CANCELLED status the consumer applies and the API and the stream show."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import Client
from prometheus_client import REGISTRY

from common.contract.events import (
    END_REASON_CANCELLED,
    END_REASON_DEADLINE,
    PurchaseResult,
    PurchaseStatus,
    Step,
    StepStatus,
    parse_purchase_message,
)
from common.contract.topics import Topic
from common.kafka.messages import ConsumedMessage
from common.outbox.models import OutboxMessage
from common.testing import assert_error, kafka_message
from purchase_svc.purchases import notifications, services
from purchase_svc.purchases.consumers import handle_purchase_result, handle_purchase_results
from purchase_svc.purchases.models import Purchase, PurchaseCancelKey
from purchase_svc.tests.conftest import Customer, purchase_row
from purchase_svc.tests.purchases.test_streams import OpenStream

URL = "/api/v1/purchases"


def cancel(
    client: Client, customer: Customer, purchase_id: Any, body: Any = "", **headers: str
) -> Any:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        f"{URL}/{purchase_id}/cancel",
        raw,
        content_type="application/json",
        headers={**customer.auth, **headers},
    )


def cancel_rows(purchase_id: Any) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(topic=Topic.PURCHASE, key=str(purchase_id)))


def final_message(
    purchase_id: Any,
    *,
    status: PurchaseStatus = PurchaseStatus.CANCELLED,
    reason: str = END_REASON_CANCELLED,
    sequence: int = 3,
) -> ConsumedMessage:
    result = PurchaseResult(
        str(purchase_id),
        Step.UPDATE_PRODUCT_INVENTORY,
        StepStatus.ROLLBACK,
        status,
        sequence=sequence,
        reason=reason,
    )
    return kafka_message(json.dumps(result.to_json()).encode(), message_id=uuid.uuid4().hex)


# ------------------------------------------------------------------ the request


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["", {}])
def test_a_pending_purchase_is_asked_to_cancel_once_through_the_outbox(
    client: Client, customer: Customer, body: Any
) -> None:
    purchase = purchase_row(customer.id)

    response = cancel(client, customer, purchase.id, body)

    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["id"] == str(purchase.id)
    assert answer["status"] == "PENDING"  # until the saga ends
    assert answer["cancel_requested_at"] is not None
    assert answer["reason"] == ""
    assert answer["links"]["cancel"] == f"{URL}/{purchase.id}/cancel"
    assert response.headers["Location"] == f"{URL}/{purchase.id}"
    (row,) = cancel_rows(purchase.id)
    event = parse_purchase_message(row.payload)
    assert (event.purchase_id, event.customer_id) == (str(purchase.id), customer.id)
    assert row.payload["type"] == "PurchaseCancelRequested"
    assert row.payload["requested_by"] == "customer"
    purchase.refresh_from_db()
    assert purchase.cancel_requested_at is not None
    assert purchase.status == "PENDING"


@pytest.mark.django_db
def test_asking_again_changes_nothing_and_answers_the_same(
    client: Client, customer: Customer
) -> None:
    purchase = purchase_row(customer.id)
    first = cancel(client, customer, purchase.id)
    asked_at = Purchase.objects.get(id=purchase.id).cancel_requested_at

    again = cancel(client, customer, purchase.id)

    assert again.status_code == 202
    assert again.json()["cancel_requested_at"] == first.json()["cancel_requested_at"]
    assert Purchase.objects.get(id=purchase.id).cancel_requested_at == asked_at
    assert len(cancel_rows(purchase.id)) == 1


@pytest.mark.django_db
def test_a_cancelled_purchase_answers_202_again_and_writes_nothing(
    client: Client, customer: Customer
) -> None:
    purchase = purchase_row(customer.id, status="CANCELLED")

    response = cancel(client, customer, purchase.id)

    assert response.status_code == 202
    assert response.json()["status"] == "CANCELLED"
    assert cancel_rows(purchase.id) == []


@pytest.mark.django_db
def test_a_completed_purchase_cannot_be_cancelled_a_refund_is_another_flow(
    client: Client, customer: Customer
) -> None:
    purchase = purchase_row(customer.id, status="COMPLETED")

    response = cancel(client, customer, purchase.id)

    body = assert_error(response, 409, "failed_precondition")
    assert body["details"]["reason"] == "purchase_completed"
    assert "refund" in body["message"]
    assert cancel_rows(purchase.id) == []
    assert Purchase.objects.get(id=purchase.id).cancel_requested_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["FAILED", "NEEDS_ATTENTION"])
def test_a_purchase_that_ended_otherwise_cannot_be_cancelled(
    client: Client, customer: Customer, status: str
) -> None:
    purchase = purchase_row(customer.id, status=status)

    response = cancel(client, customer, purchase.id)

    body = assert_error(response, 409, "failed_precondition")
    assert body["details"] == {"reason": "purchase_ended", "status": status}
    assert cancel_rows(purchase.id) == []


@pytest.mark.django_db
def test_only_the_owner_can_cancel(
    client: Client, customer: Customer, other_customer: Customer
) -> None:
    purchase = purchase_row(customer.id)

    assert_error(cancel(client, other_customer, purchase.id), 404, "not_found")
    assert_error(cancel(client, customer, uuid.uuid4()), 404, "not_found")
    assert client.post(f"{URL}/{purchase.id}/cancel").status_code == 401
    assert cancel_rows(purchase.id) == []


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"reason": "changed my mind"}, [1], "not json"])
def test_a_cancel_takes_no_body(client: Client, customer: Customer, body: Any) -> None:
    purchase = purchase_row(customer.id)

    response = cancel(client, customer, purchase.id, body)

    assert response.status_code == 400
    assert cancel_rows(purchase.id) == []


@pytest.mark.django_db
def test_get_is_not_a_way_to_cancel(client: Client, customer: Customer) -> None:
    purchase = purchase_row(customer.id)

    response = client.get(f"{URL}/{purchase.id}/cancel", headers=customer.auth)

    assert_error(response, 405, "method_not_allowed")


# ------------------------------------------------------------------ Idempotency-Key


@pytest.mark.django_db
def test_a_keyed_retry_answers_the_first_answer_byte_for_byte(
    client: Client, customer: Customer
) -> None:
    purchase = purchase_row(customer.id)
    first = cancel(client, customer, purchase.id, **{"Idempotency-Key": "cancel-1"})
    # Meanwhile the saga ended: a plain cancel now answers the CANCELLED purchase.
    handle_purchase_result(final_message(purchase.id))

    retry = cancel(client, customer, purchase.id, **{"Idempotency-Key": "cancel-1"})

    assert (first.status_code, retry.status_code) == (202, 202)
    assert retry.content == first.content
    assert retry.json()["status"] == "PENDING"
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert cancel(client, customer, purchase.id).json()["status"] == "CANCELLED"
    assert len(cancel_rows(purchase.id)) == 1


@pytest.mark.django_db
def test_a_key_that_cancelled_another_purchase_is_refused(
    client: Client, customer: Customer
) -> None:
    one, two = purchase_row(customer.id), purchase_row(customer.id)
    cancel(client, customer, one.id, **{"Idempotency-Key": "k"})

    response = cancel(client, customer, two.id, **{"Idempotency-Key": "k"})

    body = assert_error(response, 422, "conflict")
    assert body["details"]["reason"] == "idempotency_key_reused"
    assert Purchase.objects.get(id=two.id).cancel_requested_at is None
    assert cancel_rows(two.id) == []


@pytest.mark.django_db
def test_keys_belong_to_their_customer(
    client: Client, customer: Customer, other_customer: Customer
) -> None:
    mine, theirs = purchase_row(customer.id), purchase_row(other_customer.id)
    cancel(client, customer, mine.id, **{"Idempotency-Key": "same"})

    response = cancel(client, other_customer, theirs.id, **{"Idempotency-Key": "same"})

    assert response.status_code == 202
    assert response.json()["id"] == str(theirs.id)


@pytest.mark.django_db
def test_a_refused_cancel_binds_no_key(client: Client, customer: Customer) -> None:
    purchase = purchase_row(customer.id, status="COMPLETED")

    assert cancel(client, customer, purchase.id, **{"Idempotency-Key": "k"}).status_code == 409

    assert not PurchaseCancelKey.objects.exists()


@pytest.mark.django_db
def test_an_invalid_key_is_refused(client: Client, customer: Customer) -> None:
    purchase = purchase_row(customer.id)

    response = cancel(client, customer, purchase.id, **{"Idempotency-Key": "x" * 129})

    assert_error(response, 400, "invalid_input")
    assert cancel_rows(purchase.id) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_cancels_write_one_request(customer: Customer) -> None:
    purchase = purchase_row(customer.id)
    barrier = threading.Barrier(4)
    outcomes: list[Any] = []

    def ask() -> None:
        try:
            barrier.wait()
            outcomes.append(
                services.purchase_cancel(
                    purchase=purchase,
                    answer=lambda p: (202, str(p.cancel_requested_at)),
                    idempotency_key="together",
                    request_fingerprint="f",
                )
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == 4
    assert len({o.answer for o in outcomes}) == 1  # every one answers the first answer
    assert sorted(o.replayed for o in outcomes) == [False, True, True, True]
    assert len(cancel_rows(purchase.id)) == 1


# ------------------------------------------------------------------ the end: CANCELLED


@pytest.mark.django_db
@pytest.mark.parametrize("batch", [False, True])
def test_the_final_event_ends_the_purchase_cancelled_with_its_reason(
    client: Client, customer: Customer, batch: bool
) -> None:
    purchase = purchase_row(customer.id)
    cancel(client, customer, purchase.id)
    message = final_message(purchase.id)

    if batch:
        handle_purchase_results([message])
    else:
        handle_purchase_result(message)

    answer = client.get(f"{URL}/{purchase.id}", headers=customer.auth).json()
    assert (answer["status"], answer["reason"]) == ("CANCELLED", "cancelled")
    assert answer["cancel_requested_at"] is not None
    assert answer["steps"][-1]["purchase_status"] == "CANCELLED"
    listed = client.get(URL, {"status": "CANCELLED"}, headers=customer.auth).json()
    assert [p["id"] for p in listed["results"]] == [str(purchase.id)]


@pytest.mark.django_db
@pytest.mark.parametrize("batch", [False, True])
def test_a_deadline_ends_the_purchase_failed_and_says_so(
    client: Client, customer: Customer, batch: bool
) -> None:
    purchase = purchase_row(customer.id)
    message = final_message(purchase.id, status=PurchaseStatus.FAILED, reason=END_REASON_DEADLINE)

    if batch:
        handle_purchase_results([message])
    else:
        handle_purchase_result(message)

    answer = client.get(f"{URL}/{purchase.id}", headers=customer.auth).json()
    assert (answer["status"], answer["reason"]) == ("FAILED", "deadline")
    assert answer["cancel_requested_at"] is None


@pytest.mark.django_db
def test_a_cancel_before_any_step_ends_with_a_cancelled_step(
    client: Client, customer: Customer
) -> None:
    purchase = purchase_row(customer.id)
    result = PurchaseResult(
        str(purchase.id),
        Step.UPDATE_PRODUCT_INVENTORY,
        StepStatus.CANCELLED,
        PurchaseStatus.CANCELLED,
        sequence=1,
        reason=END_REASON_CANCELLED,
    )

    handle_purchase_result(
        kafka_message(json.dumps(result.to_json()).encode(), message_id=uuid.uuid4().hex)
    )

    answer = client.get(f"{URL}/{purchase.id}", headers=customer.auth).json()
    assert answer["status"] == "CANCELLED"
    assert [(s["step"], s["status"]) for s in answer["steps"]] == [
        ("UPDATE_PRODUCT_INVENTORY", "CANCELLED")
    ]
    assert answer["waiting"] is None


@pytest.fixture
def stopped_hub() -> Iterator[None]:
    """The stream's listener thread stops with the test (it holds a connection)."""
    yield
    notifications.hub().stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stopped_hub")
def test_the_stream_ends_with_the_cancelled_status_and_its_reason(
    client: Client, customer: Customer
) -> None:
    purchase = purchase_row(customer.id)
    handle_purchase_result(final_message(purchase.id, sequence=1))
    response = client.get(f"{URL}/{purchase.id}/events", headers=customer.auth)
    stream = OpenStream(response)
    try:
        events = stream.rest()
    finally:
        stream.close()

    assert events[-1].event == "status"
    assert events[-1].data == {"id": str(purchase.id), "status": "CANCELLED", "reason": "cancelled"}


# ------------------------------------------------------------------ metrics


def finished(status: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "purchase_finished_total", {"status": status, "reason": reason}
    )
    return value or 0.0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch", [False, True])
def test_final_statuses_are_counted_by_status_and_reason_once(
    customer: Customer, batch: bool
) -> None:
    one, two = purchase_row(customer.id), purchase_row(customer.id)
    before = finished("CANCELLED", "cancelled"), finished("FAILED", "deadline")
    messages = [
        final_message(one.id, sequence=2),
        final_message(one.id, sequence=1),  # late: not applied, not counted
        final_message(two.id, status=PurchaseStatus.FAILED, reason=END_REASON_DEADLINE),
    ]

    for message in messages:
        if batch:
            with transaction.atomic():
                handle_purchase_results([message])
        else:
            handle_purchase_result(message)

    after = finished("CANCELLED", "cancelled"), finished("FAILED", "deadline")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


@pytest.mark.django_db
def test_a_rolled_back_batch_counts_nothing(customer: Customer) -> None:
    purchase = purchase_row(customer.id)
    before = finished("CANCELLED", "cancelled")

    handle_purchase_results([final_message(purchase.id)])  # the test's transaction never commits

    assert finished("CANCELLED", "cancelled") == before


# ------------------------------------------------------------------ admin

ADMIN = "/admin/purchase/purchases/purchase/"


@pytest.mark.django_db
def test_the_admin_filters_cancelled_purchases_and_those_asked_to_cancel(
    admin_client: Client,
) -> None:
    cancelled = purchase_row(4242, status="CANCELLED")
    Purchase.objects.filter(id=cancelled.id).update(reason="cancelled")
    asked = purchase_row(4242)
    Purchase.objects.filter(id=asked.id).update(cancel_requested_at=asked.created_at)
    untouched = purchase_row(4242, status="COMPLETED")

    by_status = admin_client.get(ADMIN, {"status__exact": "CANCELLED"}).content.decode()
    by_reason = admin_client.get(ADMIN, {"reason": "cancelled"}).content.decode()
    by_request = admin_client.get(ADMIN, {"cancel_requested_at__isempty": "0"}).content.decode()

    assert str(cancelled.id) in by_status and str(untouched.id) not in by_status
    assert str(cancelled.id) in by_reason and str(asked.id) not in by_reason
    assert str(asked.id) in by_request and str(untouched.id) not in by_request
