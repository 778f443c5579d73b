"""Cancellation and the saga deadline (issue 21), with scripted step calls.

Given a saga at some point of its life, when a cancel arrives (the consumer's
PurchaseCancelRequested, or staff) or its deadline passes, then it stops going forward
at its next transition, never in a call, undoes what it did in reverse, and ends as the
purchase service is told: CANCELLED (reason "cancelled") or FAILED (reason "deadline");
a saga already compensating, or ended, is not changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest
from django.utils import timezone

from common.contract.events import (
    CancelRequester,
    PurchaseCancelRequested,
    PurchaseStatus,
)
from common.errors import ApplicationError
from orchestrator_svc.sagas import circuits, metrics, services
from orchestrator_svc.sagas.models import PendingCancel, SagaPhase, SagaState, StopReason
from orchestrator_svc.tests.fakes import (
    INVENTORY,
    ORDER,
    PAYMENT,
    FakeRpcError,
    FakeServices,
    published,
    purchase_event,
    run_to_rest,
    saga_row,
    story,
)

pytestmark = pytest.mark.django_db


def cancel(purchase_id: str, customer_id: int = 42, by: str = "customer") -> list[str]:
    """What the consumer does with a PurchaseCancelRequested."""
    return services.sagas_cancel(
        cancels=[PurchaseCancelRequested(purchase_id, customer_id, CancelRequester(by))]
    )


def cancelling(purchase_id: str) -> Callable[[], None]:
    """A call's hook: the cancel is consumed while that call is in flight."""

    def hook() -> None:
        cancel(purchase_id)

    return hook


def final_event(purchase_id: str) -> tuple[str, str, PurchaseStatus, str]:
    last = published(purchase_id)[-1]
    return last.step.value, last.status.value, last.purchase_status, last.reason


def counted(counter: Any, *labels: str) -> float:
    return float((counter.labels(*labels) if labels else counter)._value.get())


# ------------------------------------------------------------------- cancel


def test_a_cancel_before_any_step_ends_the_saga_cancelled_without_a_call(
    start_saga: Callable[..., str],
    fake: FakeServices,
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    purchase_id = start_saga()
    enqueued.clear()
    before = counted(metrics.CANCELLED)

    with django_capture_on_commit_callbacks(execute=True):
        assert cancel(purchase_id) == [purchase_id]

    assert enqueued == [purchase_id]  # handed to a worker at once
    with django_capture_on_commit_callbacks(execute=True):  # counters count on commit
        assert run_to_rest(purchase_id, fake).state == SagaState.CANCELLED
    assert fake.calls == []
    assert story(purchase_id) == [(INVENTORY, "CANCELLED")]
    assert final_event(purchase_id) == (
        INVENTORY,
        "CANCELLED",
        PurchaseStatus.CANCELLED,
        "cancelled",
    )
    saga = saga_row(purchase_id)
    assert (saga.stop_reason, saga.cancel_requested_by) == (StopReason.CANCELLED, "customer")
    assert (saga.lease_owner, saga.next_run_at) == ("", None)
    assert counted(metrics.CANCELLED) == before + 1


def test_a_cancel_between_steps_undoes_the_steps_done_in_reverse(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    # The cancel is consumed while the order is being created: that call finishes.
    fake.hooks["create_order"] = cancelling(purchase_id)

    assert run_to_rest(purchase_id, fake).state == SagaState.CANCELLED

    assert fake.calls == ["reserve_inventory", "create_order", "cancel_order", "release_inventory"]
    assert story(purchase_id) == [
        (INVENTORY, "EXECUTE"),
        (INVENTORY, "SUCCESS"),
        (ORDER, "EXECUTE"),
        (ORDER, "SUCCESS"),
        (PAYMENT, "CANCELLED"),  # the step that will not run
        (ORDER, "ROLLBACK"),
        (INVENTORY, "ROLLBACK"),
    ]
    events = published(purchase_id)
    assert [e.purchase_status for e in events[:-1]] == [PurchaseStatus.PENDING] * 6
    assert all(e.reason == "" for e in events[:-1])
    assert final_event(purchase_id) == (
        INVENTORY,
        "ROLLBACK",
        PurchaseStatus.CANCELLED,
        "cancelled",
    )


def test_a_call_in_flight_is_never_cut_and_a_transient_fault_is_not_retried_after_a_cancel(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    fake.hooks["create_order"] = cancelling(purchase_id)
    fake.fail("create_order", grpc.StatusCode.UNAVAILABLE)

    assert run_to_rest(purchase_id, fake).state == SagaState.CANCELLED

    # The order may exist without its reply: it is compensated, not called again.
    assert fake.calls == ["reserve_inventory", "create_order", "cancel_order", "release_inventory"]
    stopped = published(purchase_id)[3]
    assert (stopped.step.value, stopped.status.value) == (ORDER, "CANCELLED")
    assert "UNAVAILABLE" in stopped.error
    assert final_event(purchase_id)[2:] == (PurchaseStatus.CANCELLED, "cancelled")


def test_a_cancel_wakes_a_saga_waiting_on_a_retry_now(
    start_saga: Callable[..., str],
    fake: FakeServices,
    settings: Any,
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SAGA_RETRY_BASE_SECONDS = 30
    settings.SAGA_RETRY_MAX_DELAY_SECONDS = 60
    purchase_id = start_saga()
    fake.fail("create_payment", grpc.StatusCode.UNAVAILABLE)
    waiting = services.saga_advance(purchase_id=purchase_id, owner="w1", steps=fake.steps())
    assert waiting.retry_in is not None and waiting.retry_in >= 15
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        cancel(purchase_id)

    assert enqueued == [purchase_id]
    assert saga_row(purchase_id).next_run_at <= timezone.now()  # type: ignore[operator]
    assert run_to_rest(purchase_id, fake).state == SagaState.CANCELLED
    assert fake.calls[-3:] == ["refund_payment", "cancel_order", "release_inventory"]
    assert fake.count("create_payment") == 1


class EdgeRefuses(FakeServices):
    """`name`'s participant is down: the edge answers 503 before the call reaches it."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.down = name

    def call(self, name: str) -> Any:
        plain = super().call(name)

        def run(purchase: Any, timeout: float) -> None:
            plain(purchase, timeout)
            if name == self.down:
                raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, EDGE_503)

        run.__name__ = name
        return run


EDGE_503 = "Received http2 header with status: 503"


def test_a_step_the_edge_refused_before_it_reached_its_participant_is_not_undone(
    start_saga: Callable[..., str], settings: Any
) -> None:
    settings.SAGA_RETRY_BASE_SECONDS = 30
    settings.SAGA_RETRY_MAX_DELAY_SECONDS = 60
    purchase_id = start_saga()
    fake = EdgeRefuses("create_payment")  # the payment service is down
    services.saga_advance(purchase_id=purchase_id, owner="w1", steps=fake.steps())

    cancel(purchase_id)

    # Ends without the payment service: its refund would wait for it, for nothing.
    assert run_to_rest(purchase_id, fake).state == SagaState.CANCELLED
    assert fake.calls[-2:] == ["cancel_order", "release_inventory"]
    assert fake.count("refund_payment") == 0
    assert story(purchase_id)[-3:] == [
        (PAYMENT, "CANCELLED"),
        (ORDER, "ROLLBACK"),
        (INVENTORY, "ROLLBACK"),
    ]


def test_a_cancel_acts_on_a_saga_held_by_an_open_circuit(
    start_saga: Callable[..., str], fake: FakeServices, settings: Any
) -> None:
    settings.SAGA_CIRCUIT_OPEN_SECONDS = 60
    purchase_id = start_saga()
    for _ in range(5):
        circuits.call_failed("product")
    held = services.saga_advance(purchase_id=purchase_id, owner="w1", steps=fake.steps())
    assert held.retry_in is not None and saga_row(purchase_id).phase == SagaPhase.WAITING

    cancel(purchase_id)

    assert run_to_rest(purchase_id, fake).state == SagaState.CANCELLED
    assert fake.calls == []  # nothing was ever called, so nothing to undo


def test_a_cancel_during_a_compensation_changes_nothing(
    start_saga: Callable[..., str], fake: FakeServices, settings: Any
) -> None:
    settings.SAGA_MAX_COMPENSATION_ATTEMPTS = 0  # the window decides; retries due at once
    purchase_id = start_saga()
    fake.fail("create_payment", grpc.StatusCode.FAILED_PRECONDITION)
    fake.fail("cancel_order", grpc.StatusCode.UNAVAILABLE)
    fake.hooks["refund_payment"] = cancelling(purchase_id)

    assert run_to_rest(purchase_id, fake).state == SagaState.FAILED

    saga = saga_row(purchase_id)
    assert (saga.stop_reason, saga.cancel_requested_at) == (StopReason.NONE, None)
    assert final_event(purchase_id) == (INVENTORY, "ROLLBACK", PurchaseStatus.FAILED, "")


def test_a_cancel_after_the_saga_ended_is_ignored(
    start_saga: Callable[..., str],
    fake: FakeServices,
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    purchase_id = start_saga()
    run_to_rest(purchase_id, fake)
    enqueued.clear()
    before = counted(metrics.CANCEL_REQUESTS, "customer", "ignored")

    with django_capture_on_commit_callbacks(execute=True):
        assert cancel(purchase_id) == []

    saga = saga_row(purchase_id)
    assert (saga.state, saga.cancel_requested_at) == (SagaState.COMPLETED, None)
    assert enqueued == []
    assert not PendingCancel.objects.exists()
    assert counted(metrics.CANCEL_REQUESTS, "customer", "ignored") == before + 1


def test_a_cancel_during_the_last_call_is_honoured_the_payment_refunded(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    # The customer was told 202 while the payment call was in flight: the payment it
    # took is refunded, and everything before it undone.
    purchase_id = start_saga()
    fake.hooks["create_payment"] = cancelling(purchase_id)

    assert run_to_rest(purchase_id, fake).state == SagaState.CANCELLED
    assert final_event(purchase_id) == (
        INVENTORY,
        "ROLLBACK",
        PurchaseStatus.CANCELLED,
        "cancelled",
    )
    assert fake.calls == [
        "reserve_inventory",
        "create_order",
        "create_payment",
        "refund_payment",
        "cancel_order",
        "release_inventory",
    ]
    assert story(purchase_id)[-5:] == [
        (PAYMENT, "SUCCESS"),
        (PAYMENT, "CANCELLED"),
        (PAYMENT, "ROLLBACK"),
        (ORDER, "ROLLBACK"),
        (INVENTORY, "ROLLBACK"),
    ]


def test_cancelling_twice_is_cancelling_once(start_saga: Callable[..., str]) -> None:
    purchase_id = start_saga()
    assert cancel(purchase_id) == [purchase_id]
    first = saga_row(purchase_id).cancel_requested_at

    assert cancel(purchase_id, by="staff") == []

    saga = saga_row(purchase_id)
    assert (saga.cancel_requested_at, saga.cancel_requested_by) == (first, "customer")


def test_a_cancel_naming_another_customer_changes_nothing(start_saga: Callable[..., str]) -> None:
    purchase_id = start_saga(customer_id=42)

    assert cancel(purchase_id, customer_id=43) == []
    assert saga_row(purchase_id).cancel_requested_at is None
    assert not PendingCancel.objects.exists()


def test_a_cancel_that_comes_before_its_saga_is_kept_and_the_saga_starts_cancelled(
    fake: FakeServices, enqueued: list[str]
) -> None:
    event = purchase_event()

    assert cancel(event.purchase_id) == []
    assert PendingCancel.objects.filter(pk=event.purchase_id).exists()
    assert cancel(event.purchase_id) == []  # kept once
    services.saga_start(event=event)

    saga = saga_row(event.purchase_id)
    assert saga.cancel_requested_at is not None and saga.cancel_requested_by == "customer"
    assert not PendingCancel.objects.exists()
    assert run_to_rest(event.purchase_id, fake).state == SagaState.CANCELLED
    assert fake.calls == []


def test_a_refused_compensation_of_a_cancelled_saga_needs_attention_then_ends_cancelled(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    fake.hooks["create_order"] = cancelling(purchase_id)
    fake.fail("cancel_order", grpc.StatusCode.FAILED_PRECONDITION)

    assert run_to_rest(purchase_id, fake).state == SagaState.NEEDS_ATTENTION
    assert final_event(purchase_id) == (
        ORDER,
        "ROLLBACK_FAILED",
        PurchaseStatus.NEEDS_ATTENTION,
        "cancelled",
    )

    services.saga_compensation_retry(purchase_id=purchase_id)

    assert run_to_rest(purchase_id, fake).state == SagaState.CANCELLED
    assert final_event(purchase_id)[2:] == (PurchaseStatus.CANCELLED, "cancelled")


# -------------------------------------------------------------------- staff


def test_staff_cancel_a_saga_in_its_own_database(
    start_saga: Callable[..., str],
    fake: FakeServices,
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    purchase_id = start_saga()
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        saga = services.saga_cancel(purchase_id=purchase_id)
    again = services.saga_cancel(purchase_id=purchase_id)  # harmless: the first stands

    assert saga.cancel_requested_by == "staff" and saga.cancel_requested_at is not None
    assert again.cancel_requested_at == saga.cancel_requested_at
    assert enqueued == [purchase_id]
    assert run_to_rest(purchase_id, fake).state == SagaState.CANCELLED
    assert "staff" in saga_row(purchase_id).last_error


def test_staff_cannot_cancel_a_saga_that_ended_or_compensates(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    completed = start_saga()
    run_to_rest(completed, fake)
    compensating = start_saga()
    saga = saga_row(compensating)
    saga.state = SagaState.COMPENSATING
    saga.save()

    with pytest.raises(ApplicationError, match="COMPLETED; there is nothing to cancel"):
        services.saga_cancel(purchase_id=completed)
    with pytest.raises(ApplicationError, match="COMPENSATING already"):
        services.saga_cancel(purchase_id=compensating)
    with pytest.raises(ApplicationError, match="No saga"):
        services.saga_cancel(purchase_id="not-a-uuid")


# ----------------------------------------------------------------- deadline


def test_a_saga_starts_with_its_deadline(start_saga: Callable[..., str], settings: Any) -> None:
    settings.SAGA_DEADLINE_SECONDS = 600
    purchase_id = start_saga()

    saga = saga_row(purchase_id)

    assert saga.deadline_at is not None
    assert abs((saga.deadline_at - saga.created_at).total_seconds() - 600) < 5


def test_a_saga_past_its_deadline_stops_at_its_next_transition_and_fails(
    start_saga: Callable[..., str], fake: FakeServices, django_capture_on_commit_callbacks: Any
) -> None:
    purchase_id = start_saga()
    before = counted(metrics.DEADLINE_EXCEEDED)

    def pass_the_deadline() -> None:
        saga = saga_row(purchase_id)
        saga.deadline_at = timezone.now() - timedelta(seconds=1)
        saga.save(update_fields=["deadline_at"])

    fake.hooks["create_order"] = pass_the_deadline

    with django_capture_on_commit_callbacks(execute=True):
        assert run_to_rest(purchase_id, fake).state == SagaState.FAILED

    assert fake.calls == ["reserve_inventory", "create_order", "cancel_order", "release_inventory"]
    stopped = published(purchase_id)[4]
    assert (stopped.step.value, stopped.status.value) == (PAYMENT, "FAILED")
    assert stopped.error.startswith("deadline")
    assert final_event(purchase_id) == (INVENTORY, "ROLLBACK", PurchaseStatus.FAILED, "deadline")
    assert saga_row(purchase_id).stop_reason == StopReason.DEADLINE
    assert counted(metrics.DEADLINE_EXCEEDED) == before + 1


def test_a_deadline_never_cuts_a_compensation_short(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    fake.fail("create_payment", grpc.StatusCode.FAILED_PRECONDITION)

    def pass_the_deadline() -> None:
        saga = saga_row(purchase_id)
        saga.deadline_at = timezone.now() - timedelta(seconds=1)
        saga.save(update_fields=["deadline_at"])

    fake.hooks["refund_payment"] = pass_the_deadline

    assert run_to_rest(purchase_id, fake).state == SagaState.FAILED
    assert fake.calls[-3:] == ["refund_payment", "cancel_order", "release_inventory"]
    assert final_event(purchase_id)[2:] == (PurchaseStatus.FAILED, "")


def test_the_periodic_resume_stops_a_waiting_saga_past_its_deadline(
    start_saga: Callable[..., str],
    fake: FakeServices,
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    now = timezone.now()
    late, on_time, compensating = start_saga(), start_saga(), start_saga()
    for purchase_id in (late, on_time, compensating):
        saga = saga_row(purchase_id)
        saga.state, saga.phase = SagaState.RUNNING, SagaPhase.WAITING
        saga.next_run_at = now + timedelta(minutes=5)  # a retry, or held by a circuit
        saga.deadline_at = now - timedelta(seconds=1)
        if purchase_id == on_time:
            saga.deadline_at = now + timedelta(minutes=1)
        if purchase_id == compensating:
            saga.state = SagaState.COMPENSATING
        saga.save()
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        resumed = services.sagas_resume_stalled()

    assert resumed == [late] and enqueued == [late]
    assert services.sagas_resume_stalled() == []  # due now: not handed over twice
    assert run_to_rest(late, fake).state == SagaState.FAILED
    assert final_event(late)[2:] == (PurchaseStatus.FAILED, "deadline")
