"""The saga state machine (services.saga_advance and friends) with scripted step calls.

Given a saga started as the consumer starts it, when workers advance it, then the
calls made, the saga's state, its step log and the events in its outbox are what
the purchase service and a person reading the admin would expect.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from django.db import connection
from django.utils import timezone

from common.contract.events import PurchaseStatus
from common.errors import ApplicationError
from common.outbox.models import OutboxMessage
from orchestrator_svc.sagas import services
from orchestrator_svc.sagas.models import SagaPhase, SagaState, StepLogStatus
from orchestrator_svc.sagas.steps import StepRefused
from orchestrator_svc.tests.fakes import (
    INVENTORY,
    ORDER,
    PAYMENT,
    FakeServices,
    log_rows,
    published,
    run_to_rest,
    saga_row,
    story,
)

pytestmark = pytest.mark.django_db

STEPS = [INVENTORY, ORDER, PAYMENT]
FORWARD = ["reserve_inventory", "create_order", "create_payment"]
BACKWARD = ["release_inventory", "cancel_order", "refund_payment"]


def test_the_happy_path_runs_every_step_once_and_completes(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()

    result = run_to_rest(purchase_id, fake)

    assert (result.acted, result.state, result.retry_in) == (True, SagaState.COMPLETED, None)
    assert fake.calls == FORWARD
    assert story(purchase_id) == [
        (INVENTORY, "EXECUTE"),
        (INVENTORY, "SUCCESS"),
        (ORDER, "EXECUTE"),
        (ORDER, "SUCCESS"),
        (PAYMENT, "EXECUTE"),
        (PAYMENT, "SUCCESS"),
    ]
    events = published(purchase_id)
    assert [e.purchase_status for e in events] == [PurchaseStatus.PENDING] * 5 + [
        PurchaseStatus.COMPLETED
    ]
    assert {e.attempt for e in events} == {1}
    done = saga_row(purchase_id)
    assert (done.lease_owner, done.lease_until, done.next_run_at) == ("", None, None)


def test_each_transition_writes_one_log_row_and_one_event_with_the_next_sequence(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    fake.fail("create_payment", grpc.StatusCode.FAILED_PRECONDITION)

    run_to_rest(purchase_id, fake)

    rows = log_rows(purchase_id)
    events = published(purchase_id)
    assert len(rows) == len(events) == 9
    assert [e.sequence for e in events] == list(range(1, 10))
    assert [r.sequence for r in rows] == list(range(1, 10))
    assert [(r.step, r.status) for r in rows] == [(e.step, e.status) for e in events]
    assert saga_row(purchase_id).sequence == 9
    assert all(r.duration_ms is not None for r in rows if r.status != StepLogStatus.EXECUTE)


@pytest.mark.parametrize("refused_at", [0, 1, 2])
def test_a_business_refusal_compensates_from_the_refused_step_down_in_reverse(
    start_saga: Callable[..., str], fake: FakeServices, refused_at: int
) -> None:
    purchase_id = start_saga()
    fake.fail(FORWARD[refused_at], grpc.StatusCode.FAILED_PRECONDITION)

    result = run_to_rest(purchase_id, fake)

    assert result.state == SagaState.FAILED
    assert fake.calls == FORWARD[: refused_at + 1] + BACKWARD[: refused_at + 1][::-1]
    expected = [(s, status) for s in STEPS[:refused_at] for status in ("EXECUTE", "SUCCESS")]
    expected += [(STEPS[refused_at], "EXECUTE"), (STEPS[refused_at], "FAILED")]
    expected += [(s, "ROLLBACK") for s in STEPS[: refused_at + 1][::-1]]
    assert story(purchase_id) == expected
    events = published(purchase_id)
    assert events[-1].purchase_status == PurchaseStatus.FAILED
    assert all(e.purchase_status == PurchaseStatus.PENDING for e in events[:-1])
    failed = next(e for e in events if e.status.value == "FAILED")
    assert failed.error.startswith("FAILED_PRECONDITION")


@pytest.mark.parametrize("code", [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT])
def test_other_business_codes_compensate_too(
    start_saga: Callable[..., str], fake: FakeServices, code: grpc.StatusCode
) -> None:
    purchase_id = start_saga()
    fake.fail("reserve_inventory", code)

    assert run_to_rest(purchase_id, fake).state == SagaState.FAILED
    assert fake.calls == ["reserve_inventory", "release_inventory"]


def test_a_transient_fault_is_retried_later_and_then_the_saga_completes(
    start_saga: Callable[..., str], fake: FakeServices, settings: Any
) -> None:
    settings.SAGA_RETRY_BASE_SECONDS = 2
    settings.SAGA_RETRY_MAX_DELAY_SECONDS = 30
    purchase_id = start_saga()
    fake.fail("create_payment", grpc.StatusCode.UNAVAILABLE)
    steps = fake.steps()

    first = services.saga_advance(purchase_id=purchase_id, owner="w1", steps=steps)

    assert first.acted and first.retry_in is not None and 0.9 <= first.retry_in <= 2.0
    waiting = saga_row(purchase_id)
    assert (waiting.state, waiting.phase, waiting.attempt) == (
        SagaState.RUNNING,
        SagaPhase.WAITING,
        1,
    )
    assert (waiting.lease_owner, waiting.lease_until) == ("", None)
    assert waiting.last_error.startswith("UNAVAILABLE")
    retry_row = log_rows(purchase_id)[-1]
    assert (retry_row.step, retry_row.status, retry_row.sequence) == (PAYMENT, "RETRY", 6)
    retry = published(purchase_id)[-1]  # the purchase hears why it waits, and until when
    assert (retry.step.value, retry.status.value, retry.attempt) == (PAYMENT, "RETRY", 1)
    assert retry.error.startswith("UNAVAILABLE")
    assert datetime.fromisoformat(retry.retry_at) == waiting.next_run_at
    assert retry.purchase_status == PurchaseStatus.PENDING

    # Not due yet: a duplicate or early task does nothing.
    early = services.saga_advance(purchase_id=purchase_id, owner="w2", steps=steps)
    assert early.acted is False
    # Due: the retry runs and the saga completes.
    waiting.next_run_at = timezone.now() - timedelta(seconds=1)
    waiting.save()
    second = services.saga_advance(purchase_id=purchase_id, owner="w3", steps=steps)

    assert second.state == SagaState.COMPLETED
    assert fake.count("create_payment") == 2
    execute_again = published(purchase_id)[-2]
    assert (execute_again.step.value, execute_again.status.value) == (PAYMENT, "EXECUTE")
    assert execute_again.attempt == 2
    assert execute_again.error.startswith("UNAVAILABLE")
    assert published(purchase_id)[-1].attempt == 2


def test_a_forward_step_whose_retry_budget_is_spent_fails_and_compensates(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    fake.fail_always("create_order", grpc.StatusCode.DEADLINE_EXCEEDED)

    result = run_to_rest(purchase_id, fake)

    assert result.state == SagaState.FAILED
    assert fake.calls == [
        "reserve_inventory",
        "create_order",
        "create_order",
        "create_order",
        "cancel_order",
        "release_inventory",
    ]
    assert story(purchase_id) == [
        (INVENTORY, "EXECUTE"),
        (INVENTORY, "SUCCESS"),
        (ORDER, "EXECUTE"),
        (ORDER, "RETRY"),
        (ORDER, "EXECUTE"),
        (ORDER, "RETRY"),
        (ORDER, "EXECUTE"),
        (ORDER, "FAILED"),
        (ORDER, "ROLLBACK"),
        (INVENTORY, "ROLLBACK"),
    ]
    failed = [e for e in published(purchase_id) if e.status.value == "FAILED"]
    assert len(failed) == 1
    assert failed[0].attempt == 3
    assert failed[0].error.startswith("gave up after 3 attempts in 0 s: DEADLINE_EXCEEDED")
    statuses = [(r.status, r.attempt) for r in log_rows(purchase_id) if r.step == ORDER]
    assert statuses == [
        ("EXECUTE", 1),
        ("RETRY", 1),
        ("EXECUTE", 2),
        ("RETRY", 2),
        ("EXECUTE", 3),
        ("FAILED", 3),
        ("ROLLBACK", 1),
    ]


def test_a_compensation_that_keeps_failing_ends_in_needs_attention_until_an_operator_retries(
    start_saga: Callable[..., str],
    fake: FakeServices,
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    purchase_id = start_saga()
    fake.fail("create_payment", grpc.StatusCode.FAILED_PRECONDITION)
    fake.fail_always("release_inventory", grpc.StatusCode.UNAVAILABLE)

    result = run_to_rest(purchase_id, fake)

    assert result.state == SagaState.NEEDS_ATTENTION
    assert fake.count("release_inventory") == 3
    last = published(purchase_id)[-1]
    assert (last.step.value, last.status.value) == (INVENTORY, "ROLLBACK_FAILED")
    assert last.purchase_status == PurchaseStatus.NEEDS_ATTENTION
    assert last.error.startswith("gave up after 3 attempts in 0 s: UNAVAILABLE")
    stuck = saga_row(purchase_id)
    assert (stuck.lease_owner, stuck.next_run_at) == ("", None)
    # Nobody advances it any more: it waits for a person.
    assert (
        services.saga_advance(purchase_id=purchase_id, owner="w9", steps=fake.steps()).acted
        is False
    )
    assert services.sagas_resume_stalled() == []

    fake.heal("release_inventory")
    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.saga_compensation_retry(purchase_id=purchase_id)

    assert enqueued == [purchase_id]
    assert saga_row(purchase_id).state == SagaState.COMPENSATING
    assert run_to_rest(purchase_id, fake).state == SagaState.FAILED
    final = published(purchase_id)[-1]
    assert (final.step.value, final.status.value) == (INVENTORY, "ROLLBACK")
    assert final.purchase_status == PurchaseStatus.FAILED
    assert [e.sequence for e in published(purchase_id)] == list(
        range(1, len(published(purchase_id)) + 1)
    )


def test_a_refused_compensation_needs_attention_at_once(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    fake.fail("create_order", grpc.StatusCode.INVALID_ARGUMENT)
    fake.fail("cancel_order", grpc.StatusCode.FAILED_PRECONDITION)

    assert run_to_rest(purchase_id, fake).state == SagaState.NEEDS_ATTENTION
    assert fake.count("cancel_order") == 1
    assert fake.count("release_inventory") == 0
    assert published(purchase_id)[-1].error.startswith("compensation refused: FAILED_PRECONDITION")


def test_the_operator_actions_refuse_sagas_they_do_not_apply_to(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    run_to_rest(purchase_id, fake)

    with pytest.raises(ApplicationError, match="nothing to resume"):
        services.saga_resume(purchase_id=purchase_id)
    with pytest.raises(ApplicationError, match="only a saga that needs attention"):
        services.saga_compensation_retry(purchase_id=purchase_id)
    with pytest.raises(ApplicationError, match="No saga"):
        services.saga_resume(purchase_id="not-a-uuid")


def test_a_second_advancer_does_nothing_while_the_first_holds_the_lease(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    steps = fake.steps()
    second: list[services.Advance] = []
    fake.hooks["create_order"] = lambda: second.append(
        services.saga_advance(purchase_id=purchase_id, owner="w2", steps=steps)
    )

    first = services.saga_advance(purchase_id=purchase_id, owner="w1", steps=steps)

    assert second == [services.Advance(acted=False)]
    assert first.state == SagaState.COMPLETED
    assert fake.calls == FORWARD


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_in_parallel_run_each_step_once(
    enqueued: list[str], fake: FakeServices
) -> None:
    from orchestrator_svc.tests.fakes import purchase_event

    event = purchase_event()
    services.saga_start(event=event)
    purchase_id = event.purchase_id
    steps = fake.steps()
    inside, go_on = threading.Event(), threading.Event()

    def slow() -> None:
        inside.set()
        go_on.wait(5)

    fake.hooks["reserve_inventory"] = slow
    results: dict[str, services.Advance] = {}

    def worker(owner: str) -> None:
        try:
            results[owner] = services.saga_advance(
                purchase_id=purchase_id, owner=owner, steps=steps
            )
        finally:
            connection.close()

    first = threading.Thread(target=worker, args=("w1",))
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=worker, args=("w2",))
    second.start()
    second.join(5)
    go_on.set()
    first.join(5)

    assert results["w2"] == services.Advance(acted=False)
    assert results["w1"].state == SagaState.COMPLETED
    assert fake.calls == FORWARD
    assert len(published(purchase_id)) == 6


def test_a_worker_that_lost_its_lease_records_nothing_more(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()

    def taken_over() -> None:
        # The lease expired during the call and another worker took the saga.
        type(saga_row(purchase_id)).objects.filter(pk=purchase_id).update(lease_owner="w2")

    fake.hooks["create_order"] = taken_over

    result = services.saga_advance(purchase_id=purchase_id, owner="w1", steps=fake.steps())

    assert result == services.Advance(acted=True)
    assert story(purchase_id)[-1] == (ORDER, "EXECUTE")
    assert saga_row(purchase_id).phase == SagaPhase.CALLING


def test_a_call_interrupted_by_a_lost_worker_counts_as_an_attempt_and_is_made_again(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    row = saga_row(purchase_id)
    # A worker took the lease, published EXECUTE and was killed in the call.
    row.state, row.phase, row.attempt = SagaState.RUNNING, SagaPhase.CALLING, 1
    row.lease_owner, row.lease_until = "dead", timezone.now() - timedelta(seconds=1)
    row.save()

    assert run_to_rest(purchase_id, fake).state == SagaState.COMPLETED

    first = log_rows(purchase_id)[0]
    assert (first.step, first.status, first.attempt) == (INVENTORY, "RETRY", 1)
    assert "interrupted" in first.error
    assert (published(purchase_id)[0].status.value, published(purchase_id)[0].attempt) == (
        "EXECUTE",
        2,
    )
    assert fake.count("reserve_inventory") == 1


def test_an_interrupted_call_past_its_budget_fails_the_step(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    row = saga_row(purchase_id)
    row.state, row.phase, row.attempt = SagaState.RUNNING, SagaPhase.CALLING, 3
    row.lease_owner, row.lease_until = "dead", timezone.now() - timedelta(seconds=1)
    row.save()

    assert run_to_rest(purchase_id, fake).state == SagaState.FAILED
    assert fake.calls == ["release_inventory"]
    assert story(purchase_id) == [(INVENTORY, "FAILED"), (INVENTORY, "ROLLBACK")]


def test_a_live_lease_of_another_worker_is_respected(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    row = saga_row(purchase_id)
    row.lease_owner, row.lease_until = "other", timezone.now() + timedelta(seconds=10)
    row.save()

    assert services.saga_advance(purchase_id=purchase_id, owner="w1", steps=fake.steps()) == (
        services.Advance(acted=False)
    )
    assert fake.calls == []


def test_an_unexpected_exception_in_a_call_is_retried_like_a_transient_fault(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()

    def broken() -> None:
        fake.hooks.pop("reserve_inventory")
        raise RuntimeError("channel closed")

    fake.hooks["reserve_inventory"] = broken

    assert run_to_rest(purchase_id, fake).state == SagaState.COMPLETED
    retry = log_rows(purchase_id)[1]
    assert (retry.status, retry.error) == ("RETRY", "RuntimeError: channel closed")


def test_a_finished_saga_is_not_advanced_again(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    run_to_rest(purchase_id, fake)
    before = OutboxMessage.objects.count()

    again = services.saga_advance(purchase_id=purchase_id, owner="w2", steps=fake.steps())

    assert again.acted is False
    assert OutboxMessage.objects.count() == before
    assert fake.calls == FORWARD


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 1.0, 2.0), (2, 2.0, 4.0), (3, 4.0, 8.0), (5, 15.0, 30.0), (9, 15.0, 30.0)],
)
def test_retry_delays_grow_exponentially_with_jitter_under_a_cap(
    attempt: int, low: float, high: float
) -> None:
    delays = [
        services.retry_delay(attempt, base=2, cap=30, rng=lambda: 0.0),
        services.retry_delay(attempt, base=2, cap=30, rng=lambda: 0.5),
        services.retry_delay(attempt, base=2, cap=30, rng=lambda: 1.0),
    ]
    assert delays[0] == low and delays[-1] == high
    assert low < delays[1] < high


# ------------------------------------------------------------------ resume


def _stall(purchase_id: str, **fields: Any) -> None:
    row = saga_row(purchase_id)
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()


def test_the_periodic_resume_hands_over_only_sagas_that_stalled(
    start_saga: Callable[..., str],
    fake: FakeServices,
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    now = timezone.now()
    lost_task = start_saga()  # its first task never ran
    _stall(lost_task, next_run_at=now - timedelta(seconds=20))
    dead_worker = start_saga()  # its worker died holding the lease
    _stall(
        dead_worker,
        state=SagaState.RUNNING,
        phase=SagaPhase.CALLING,
        lease_owner="dead",
        lease_until=now - timedelta(seconds=1),
        next_run_at=now - timedelta(seconds=30),
    )
    working = start_saga()  # a live lease: someone is on it
    _stall(
        working,
        lease_owner="w",
        lease_until=now + timedelta(seconds=10),
        next_run_at=now - timedelta(seconds=30),
    )
    backing_off = start_saga()  # a retry due in the future
    _stall(backing_off, phase=SagaPhase.WAITING, next_run_at=now + timedelta(seconds=10))
    just_due = start_saga()  # due, but not overdue by the stall time
    _stall(just_due, next_run_at=now - timedelta(seconds=5))
    finished = start_saga()
    run_to_rest(finished, fake)
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        resumed = services.sagas_resume_stalled()

    assert sorted(resumed) == sorted([lost_task, dead_worker])
    assert sorted(enqueued) == sorted([lost_task, dead_worker])
    # Not handed over again before another stall time passes.
    assert saga_row(lost_task).next_run_at > now  # type: ignore[operator]
    enqueued.clear()
    assert services.sagas_resume_stalled() == []
    # The resumed saga with the dead worker's call finishes.
    assert run_to_rest(dead_worker, fake).state == SagaState.COMPLETED


def test_the_resume_action_makes_a_backing_off_saga_due_now(
    start_saga: Callable[..., str],
    fake: FakeServices,
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    purchase_id = start_saga()
    _stall(purchase_id, phase=SagaPhase.WAITING, next_run_at=timezone.now() + timedelta(minutes=5))
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.saga_resume(purchase_id=purchase_id)

    assert enqueued == [purchase_id]
    assert run_to_rest(purchase_id, fake).state == SagaState.COMPLETED


def test_starting_a_saga_hands_it_to_a_worker_only_after_commit(
    django_capture_on_commit_callbacks: Any, enqueued: list[str]
) -> None:
    from orchestrator_svc.tests.fakes import purchase_event

    event = purchase_event()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        saga, created = services.saga_start(event=event)
    assert created and enqueued == []
    assert len(callbacks) == 2  # the hand-over, and counting the start (metrics)

    for callback in callbacks:
        callback()
    assert enqueued == [event.purchase_id]
    assert saga.state == SagaState.STARTED


def test_a_command_that_answers_ok_without_effect_compensates(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()

    def cancelled_already() -> None:
        raise StepRefused("the order is CANCELLED, not CREATED")

    fake.hooks["create_order"] = cancelled_already

    assert run_to_rest(purchase_id, fake).state == SagaState.FAILED
    assert fake.calls == ["reserve_inventory", "create_order", "cancel_order", "release_inventory"]
    failed = published(purchase_id)[3]
    assert (failed.status.value, failed.error) == (
        "FAILED",
        "REFUSED: the order is CANCELLED, not CREATED",
    )
