"""GET /api/v1/purchases/{id}/events in-process: the stream's content, wake-ups and limits.

Steps are recorded with the consumer's own service function, committed (transactional
tests), so the stream is woken by the real NOTIFY through the process's listener.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, override_settings

from common.contract.events import PurchaseResult, PurchaseStatus, Step, StepStatus
from common.testing import assert_error
from purchase_svc.purchases import notifications, services, streams
from purchase_svc.purchases.models import PurchaseStepEvent
from purchase_svc.tests.conftest import (
    Customer,
    SseEvent,
    SseReader,
    purchase_row,
)

pytestmark = pytest.mark.django_db(transaction=True)


def record(
    purchase_id: Any,
    sequence: int,
    step: Step,
    status: StepStatus,
    purchase_status: PurchaseStatus = PurchaseStatus.PENDING,
) -> None:
    services.purchase_step_record(
        message_id=uuid.uuid4().hex,
        result=PurchaseResult(str(purchase_id), step, status, purchase_status, sequence),
    )


class OpenStream:
    def __init__(self, response: Any) -> None:
        self.response = response
        self.events = SseReader(iter(response.streaming_content))

    def next_event(self, *, skip_comments: bool = True) -> SseEvent:
        for event in self.events:
            if event.event in ("retry", ":") and skip_comments:
                continue
            return event
        raise AssertionError("the stream ended")

    def rest(self) -> list[SseEvent]:
        return [e for e in self.events if e.event not in ("retry", ":")]

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def open_stream(client: Client) -> Iterator[Any]:
    opened: list[OpenStream] = []

    def open_(customer: Customer, purchase_id: Any, **headers: str) -> OpenStream:
        response = client.get(
            f"/api/v1/purchases/{purchase_id}/events", headers={**customer.auth, **headers}
        )
        assert response.status_code == 200, response.content
        stream = OpenStream(response)
        opened.append(stream)
        return stream

    yield open_
    for stream in opened:
        stream.close()
    assert streams.SLOTS.open == 0


@pytest.fixture(autouse=True)
def fresh_hub() -> Iterator[None]:
    """Each test gets a listener on its own test database."""
    notifications.hub().stop()
    yield
    notifications.hub().stop()


def test_the_stream_tells_the_state_the_history_each_new_step_and_the_end(
    client: Client, customer: Customer, open_stream: Any
) -> None:
    purchase = purchase_row(customer.id)
    record(purchase.id, 1, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.EXECUTE)

    stream = open_stream(customer, purchase.id)

    assert stream.response["Content-Type"].startswith("text/event-stream")
    assert stream.response["Cache-Control"] == "no-cache"
    assert stream.response["X-Accel-Buffering"] == "no"
    state = stream.next_event()
    assert (state.event, state.data) == (
        "state",
        {"id": str(purchase.id), "status": "PENDING", "amount": 2780, "currency_code": "VND"},
    )
    first = stream.next_event()
    assert (first.event, first.data["step"], first.data["status"]) == (
        "step",
        "UPDATE_PRODUCT_INVENTORY",
        "EXECUTE",
    )
    assert first.id is not None

    changes = [
        (2, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.SUCCESS, PurchaseStatus.PENDING),
        (3, Step.CREATE_ORDER, StepStatus.EXECUTE, PurchaseStatus.PENDING),
        (4, Step.CREATE_ORDER, StepStatus.SUCCESS, PurchaseStatus.PENDING),
        (5, Step.CREATE_PAYMENT, StepStatus.EXECUTE, PurchaseStatus.PENDING),
        (6, Step.CREATE_PAYMENT, StepStatus.SUCCESS, PurchaseStatus.COMPLETED),
    ]
    for sequence, step, status, overall in changes:
        record(purchase.id, sequence, step, status, overall)
        event = stream.next_event()
        assert event.event == "step"
        assert (event.data["sequence"], event.data["step"], event.data["status"]) == (
            sequence,
            step.value,
            status.value,
        )
        assert event.data["purchase_status"] == overall.value

    assert stream.rest() == [
        SseEvent("status", {"id": str(purchase.id), "status": "COMPLETED", "reason": ""})
    ]


def test_a_final_purchase_streams_its_story_and_ends_at_once(
    customer: Customer, open_stream: Any
) -> None:
    purchase = purchase_row(customer.id)
    record(purchase.id, 1, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.EXECUTE)
    record(purchase.id, 2, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.FAILED, PurchaseStatus.FAILED)

    events = open_stream(customer, purchase.id).rest()

    # the story in its order: the state it started from, the steps, the end last
    assert [(e.event, (e.data or {}).get("status")) for e in events] == [
        ("state", "PENDING"),
        ("step", "EXECUTE"),
        ("step", "FAILED"),
        ("status", "FAILED"),
    ]
    assert [e.data["purchase_status"] for e in events if e.event == "step"] == [
        "PENDING",
        "FAILED",
    ]


def test_a_step_recorded_late_is_replayed_in_the_sagas_order(
    customer: Customer, open_stream: Any
) -> None:
    # Given a FAILED (sequence 3) that arrived before the SUCCESS (2) it follows
    purchase = purchase_row(customer.id)
    record(purchase.id, 1, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.EXECUTE)
    record(purchase.id, 3, Step.CREATE_ORDER, StepStatus.FAILED, PurchaseStatus.FAILED)
    record(purchase.id, 2, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.SUCCESS)

    events = open_stream(customer, purchase.id).rest()

    assert [(e.event, (e.data or {}).get("sequence")) for e in events] == [
        ("state", None),
        ("step", 1),
        ("step", 2),
        ("step", 3),
        ("status", None),
    ]
    assert [e.data["status"] for e in events] == [
        "PENDING",
        "EXECUTE",
        "SUCCESS",
        "FAILED",
        "FAILED",
    ]


def test_resuming_in_the_middle_of_a_reordered_replay_skips_no_step(
    customer: Customer, open_stream: Any
) -> None:
    purchase = purchase_row(customer.id)
    record(purchase.id, 1, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.EXECUTE)
    record(purchase.id, 3, Step.CREATE_ORDER, StepStatus.FAILED, PurchaseStatus.FAILED)
    record(purchase.id, 2, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.SUCCESS)
    first = open_stream(customer, purchase.id)
    first.next_event()  # state
    first.next_event()  # sequence 1
    second = first.next_event()  # sequence 2, recorded after sequence 3
    first.close()
    assert second.data["sequence"] == 2

    # When the client reconnects with the last id it got
    resumed = open_stream(customer, purchase.id, **{"Last-Event-ID": second.id}).rest()

    # Then sequence 3 (the final step) still comes, with the purchase as it was left
    assert [(e.event, e.data.get("status"), e.data.get("sequence")) for e in resumed] == [
        ("state", "PENDING", None),
        ("step", "SUCCESS", 2),  # sent again rather than risk losing 3
        ("step", "FAILED", 3),
        ("status", "FAILED", None),
    ]


def test_a_resumed_stream_starts_from_the_status_the_client_had_seen(
    customer: Customer, open_stream: Any
) -> None:
    # Given a client that saw the saga stop at NEEDS_ATTENTION
    purchase = purchase_row(customer.id)
    record(
        purchase.id,
        1,
        Step.CREATE_ORDER,
        StepStatus.ROLLBACK_FAILED,
        PurchaseStatus.NEEDS_ATTENTION,
    )
    seen = open_stream(customer, purchase.id).rest()
    assert [e.event for e in seen] == ["state", "step", "status"]
    # and a person who then finished it
    record(purchase.id, 2, Step.CREATE_ORDER, StepStatus.ROLLBACK, PurchaseStatus.FAILED)

    resumed = open_stream(customer, purchase.id, **{"Last-Event-ID": seen[1].id}).rest()

    assert [(e.event, e.data.get("status")) for e in resumed] == [
        ("state", "NEEDS_ATTENTION"),
        ("step", "ROLLBACK"),
        ("status", "FAILED"),
    ]


def test_in_saga_order_holds_the_resume_id_back_until_the_late_step_is_sent() -> None:
    def step(row_id: int, sequence: int) -> PurchaseStepEvent:
        return PurchaseStepEvent(id=row_id, sequence=sequence)

    in_order = streams.in_saga_order([step(11, 1), step(12, 2)], after_id=10)
    reordered = streams.in_saga_order([step(11, 1), step(12, 3), step(13, 2)], after_id=10)

    assert [(s.id, resume) for s, resume in in_order] == [(11, 11), (12, 12)]
    assert [(s.sequence, resume) for s, resume in reordered] == [(1, 11), (2, 11), (3, 13)]


@override_settings(PURCHASE_SSE_SAFETY_POLL_SECONDS=30)
def test_a_new_step_wakes_the_stream_at_once(customer: Customer, open_stream: Any) -> None:
    purchase = purchase_row(customer.id)
    stream = open_stream(customer, purchase.id)
    assert stream.next_event().event == "state"
    assert notifications.hub().wait_until_listening(5)

    record(purchase.id, 1, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.EXECUTE)
    started = time.monotonic()
    event = stream.next_event()

    assert event.event == "step"
    assert time.monotonic() - started < 1.0  # the NOTIFY, not the 30 s safety poll


@override_settings(PURCHASE_SSE_SAFETY_POLL_SECONDS=30, PURCHASE_SSE_FALLBACK_POLL_SECONDS=0.2)
def test_without_a_listener_the_stream_polls(
    customer: Customer, open_stream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class DeafHub(notifications.PurchaseEventHub):
        def _ensure_thread(self) -> None:  # never connects: listening stays False
            pass

    monkeypatch.setattr(streams, "hub", lambda: DeafHub())
    purchase = purchase_row(customer.id)
    stream = open_stream(customer, purchase.id)
    assert stream.next_event().event == "state"

    record(purchase.id, 1, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.EXECUTE)
    started = time.monotonic()

    assert stream.next_event().event == "step"
    assert time.monotonic() - started < 1.0


@override_settings(PURCHASE_SSE_HEARTBEAT_SECONDS=0.2)
def test_a_quiet_stream_sends_heartbeats(customer: Customer, open_stream: Any) -> None:
    stream = open_stream(customer, purchase_row(customer.id).id)
    assert stream.next_event().event == "state"

    started = time.monotonic()
    comment = stream.next_event(skip_comments=False)

    assert comment == SseEvent(":", "keepalive")
    assert time.monotonic() - started < 1.0


@override_settings(PURCHASE_SSE_MAX_SECONDS=0.5)
def test_a_stream_ends_at_its_time_limit_without_a_status(
    customer: Customer, open_stream: Any
) -> None:
    stream = open_stream(customer, purchase_row(customer.id).id)
    started = time.monotonic()

    events = list(stream.events)

    assert 0.4 < time.monotonic() - started < 3
    assert [e.event for e in events] == ["retry", "state", ":"]
    assert "time limit" in events[-1].data


def test_last_event_id_resumes_after_that_step_and_204_once_all_is_seen(
    client: Client, customer: Customer, open_stream: Any
) -> None:
    purchase = purchase_row(customer.id)
    record(purchase.id, 1, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.EXECUTE)
    record(purchase.id, 2, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.SUCCESS)
    first = open_stream(customer, purchase.id)
    first.next_event()
    seen = first.next_event().id
    first.close()
    record(purchase.id, 3, Step.CREATE_ORDER, StepStatus.FAILED, PurchaseStatus.FAILED)

    resumed = open_stream(customer, purchase.id, **{"Last-Event-ID": seen}).rest()
    last_id = [e.id for e in resumed if e.id][-1]
    done = client.get(
        f"/api/v1/purchases/{purchase.id}/events",
        headers={**customer.auth, "Last-Event-ID": last_id},
    )

    assert [(e.event, e.data.get("sequence")) for e in resumed] == [
        ("state", None),
        ("step", 2),
        ("step", 3),
        ("status", None),
    ]
    assert done.status_code == 204


@override_settings(PURCHASE_SSE_MAX_STREAMS=1)
def test_streams_beyond_the_process_limit_answer_503_until_one_closes(
    client: Client, customer: Customer, open_stream: Any
) -> None:
    purchase = purchase_row(customer.id)
    first = open_stream(customer, purchase.id)
    url = f"/api/v1/purchases/{purchase.id}/events"

    refused = client.get(url, headers=customer.auth)
    first.close()
    again = client.get(url, headers=customer.auth)

    assert_error(refused, 503, "unavailable")
    assert refused.headers["Retry-After"] == "5"
    assert again.status_code == 200
    again.close()


def test_an_event_source_may_pass_its_token_in_the_query(
    client: Client, customer: Customer
) -> None:
    purchase = purchase_row(customer.id, status="COMPLETED")
    url = f"/api/v1/purchases/{purchase.id}/events"

    ok = client.get(f"{url}?access_token={customer.token}", headers={"Accept": "text/event-stream"})
    bad = client.get(f"{url}?access_token=nope", headers={"Accept": "text/event-stream"})
    not_elsewhere = client.get(f"/api/v1/purchases/{purchase.id}?access_token={customer.token}")

    assert ok.status_code == 200
    events = SseReader(iter(ok.streaming_content))  # type: ignore[attr-defined]
    assert [e.event for e in events] == ["retry", "state", "status"]
    assert_error(bad, 401, "unauthenticated")
    assert_error(not_elsewhere, 401, "unauthenticated")


def test_head_is_not_a_way_to_hold_a_stream_open(client: Client, customer: Customer) -> None:
    purchase = purchase_row(customer.id)

    response = client.head(f"/api/v1/purchases/{purchase.id}/events", headers=customer.auth)

    assert response.status_code == 405
    assert streams.SLOTS.open == 0


def test_a_stream_ends_soon_after_its_client_goes_away(customer: Customer) -> None:
    purchase = purchase_row(customer.id)
    gone = False
    released: list[bool] = []
    stream = streams.PurchaseEventStream(
        purchase_id=purchase.id, client_gone=lambda: gone, release=lambda: released.append(True)
    )
    chunks = iter(stream)
    assert next(chunks).startswith(b"retry:")
    assert next(chunks).startswith(b"event: state")

    gone = True
    started = time.monotonic()

    assert list(chunks) == []
    assert time.monotonic() - started < 3  # one safety-poll interval, not a heartbeat
    stream.close()
    stream.close()
    assert released == [True]


def test_a_closed_peer_is_told_from_an_open_quiet_one() -> None:
    ours, theirs = socket.socketpair()
    try:
        closed_by_peer = streams.socket_closed_by_peer(ours)
        assert closed_by_peer() is False
        theirs.sendall(b"GET / HTTP/1.1\r\n")  # a pipelined request is not a goodbye
        assert closed_by_peer() is False
        theirs.close()
        ours.recv(100)
        assert closed_by_peer() is True
    finally:
        ours.close()
    assert streams.socket_closed_by_peer(None)() is False
