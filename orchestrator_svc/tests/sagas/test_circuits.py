"""A participant's circuit, alone (a fake clock) and in the engine (fake participants)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest
from django.utils import timezone

from common.contract.events import PurchaseStatus
from common.testing import ManualClock
from orchestrator_svc.sagas import circuits, services
from orchestrator_svc.sagas.circuits import Circuit, CircuitState
from orchestrator_svc.sagas.models import Saga, SagaPhase, SagaState
from orchestrator_svc.tests.fakes import FakeServices, published, saga_row


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make(clock: ManualClock) -> Circuit:
    return Circuit(failures_to_open=3, open_seconds=5, probe_timeout=10, clock=clock)


def test_a_circuit_opens_after_failures_in_a_row_and_a_success_in_between_resets_them(
    clock: ManualClock,
) -> None:
    circuit = make(clock)
    circuit.failed()
    circuit.failed()
    assert circuit.succeeded() is False  # it was closed: nothing to announce
    circuit.failed()
    circuit.failed()
    assert circuit.hold_for() is None
    assert circuit.failed() is True  # this one opened it (logged and counted once)
    assert circuit.state is CircuitState.OPEN
    assert circuit.hold_for() == 5
    assert circuit.failed() is False  # a late failure: still open, nothing new


def test_an_open_circuit_lets_one_probe_through_when_due_and_closes_on_its_success(
    clock: ManualClock,
) -> None:
    circuit = make(clock)
    for _ in range(3):
        circuit.failed()
    clock.now += 2
    assert circuit.hold_for() == 3  # the probe is due in 3 s
    clock.now += 3
    assert circuit.hold_for() is None  # this caller probes
    assert circuit.hold_for() == 5  # the others wait while it is in flight
    assert circuit.succeeded() is True  # closed: the engine wakes the held sagas
    assert circuit.hold_for() is None


def test_a_failed_probe_opens_the_circuit_again_and_a_lost_probe_frees_its_slot(
    clock: ManualClock,
) -> None:
    circuit = make(clock)
    for _ in range(3):
        circuit.failed()
    clock.now += 5
    assert circuit.hold_for() is None
    circuit.failed()  # the probe failed: one more wait
    assert circuit.state is CircuitState.OPEN and circuit.hold_for() == 5
    clock.now += 5
    assert circuit.hold_for() is None  # a probe that never reports (its worker died)...
    clock.now += 10
    assert circuit.hold_for() is None  # ...does not hold the others forever


@pytest.mark.django_db
def test_sagas_waiting_on_a_participant_that_is_down_are_held_and_resumed_when_it_answers(
    start_saga: Callable[..., str], fake: FakeServices, settings: Any, clock: ManualClock
) -> None:
    settings.SAGA_CIRCUIT_FAILURES = 2
    settings.SAGA_RETRY_BASE_SECONDS = 2
    steps = fake.steps()
    payment = circuits.circuit("payment")
    payment._clock = clock
    fake.fail_always("create_payment", grpc.StatusCode.UNAVAILABLE)
    first, second = start_saga(), start_saga()
    for purchase_id in (first, second):  # two failed calls in a row: the circuit opens
        services.sagas_advance(purchase_ids=[purchase_id], owner="w1", steps=steps)
    assert payment.state is CircuitState.OPEN

    held = start_saga()
    result = services.sagas_advance(purchase_ids=[held], owner="w1", steps=steps)[held]

    assert fake.count("create_payment") == 2  # not called: held
    row = saga_row(held)
    assert (row.state, row.phase, row.step_index, row.attempt) == (
        SagaState.RUNNING,
        SagaPhase.WAITING,
        2,
        0,
    )
    assert result.retry_in is not None and 4 <= result.retry_in <= 6.5
    retry = published(held)[-1]
    assert retry.status.value == "RETRY" and retry.purchase_status == PurchaseStatus.PENDING
    assert "payment is unavailable" in retry.error and retry.retry_at
    # Held again before the probe: no call, and nothing new to announce.
    Saga.objects.filter(pk=held).update(next_run_at=timezone.now() - timedelta(seconds=1))
    events = len(published(held))
    services.sagas_advance(purchase_ids=[held], owner="w1", steps=steps)
    assert fake.count("create_payment") == 2 and len(published(held)) == events

    # Payment is back; the probe is due: the held saga probes, and the circuit's close
    # makes the two sagas that waited on their own backoff due at once.
    fake.heal("create_payment")
    clock.now += 10
    Saga.objects.filter(pk=held).update(next_run_at=timezone.now() - timedelta(seconds=1))
    results = services.sagas_advance(purchase_ids=[held], owner="w1", steps=steps)

    assert results[held].state == SagaState.COMPLETED
    assert payment.state is CircuitState.CLOSED
    assert {results[first].retry_in, results[second].retry_in} == {0.0}
    woken = services.sagas_advance(purchase_ids=[first, second], owner="w1", steps=steps)
    assert {woken[first].state, woken[second].state} == {SagaState.COMPLETED}


@pytest.mark.django_db
def test_a_forward_step_fails_when_its_window_is_spent_however_few_calls_it_made(
    start_saga: Callable[..., str], fake: FakeServices, settings: Any
) -> None:
    settings.SAGA_MAX_ATTEMPTS = 0  # no cap: the window alone
    settings.SAGA_STEP_RETRY_WINDOWS = {"CREATE_PAYMENT": 60}
    settings.SAGA_RETRY_BASE_SECONDS = 2
    steps = fake.steps()
    purchase_id = start_saga()
    fake.fail_always("create_payment", grpc.StatusCode.UNAVAILABLE)
    services.sagas_advance(purchase_ids=[purchase_id], owner="w1", steps=steps)
    row = saga_row(purchase_id)
    assert row.phase == SagaPhase.WAITING and row.call_started_at is not None

    # 61 s after the call was first due, the next try would be outside the window.
    past = timezone.now() - timedelta(seconds=61)
    Saga.objects.filter(pk=purchase_id).update(call_started_at=past, next_run_at=past)
    result = services.sagas_advance(purchase_ids=[purchase_id], owner="w1", steps=steps)

    assert result[purchase_id].state == SagaState.FAILED
    assert fake.count("create_payment") == 1
    failed = next(e for e in published(purchase_id) if e.status.value == "FAILED")
    assert failed.error.startswith("gave up after 1 attempts in 61 s: UNAVAILABLE")


@pytest.mark.django_db
def test_a_retry_that_would_start_past_the_window_is_not_scheduled(
    start_saga: Callable[..., str], fake: FakeServices, settings: Any
) -> None:
    settings.SAGA_MAX_ATTEMPTS = 0
    settings.SAGA_STEP_RETRY_WINDOW_SECONDS = 1
    settings.SAGA_RETRY_BASE_SECONDS = 4  # the first retry waits 2-4 s
    settings.SAGA_RETRY_MAX_DELAY_SECONDS = 30
    purchase_id = start_saga()
    fake.fail("reserve_inventory", grpc.StatusCode.UNAVAILABLE)

    result = services.sagas_advance(purchase_ids=[purchase_id], owner="w1", steps=fake.steps())

    assert result[purchase_id].state == SagaState.FAILED
    assert fake.calls == ["reserve_inventory", "release_inventory"]


@pytest.mark.django_db
def test_a_compensation_rides_out_failures_within_its_window_and_finishes_by_itself(
    start_saga: Callable[..., str], fake: FakeServices, settings: Any
) -> None:
    settings.SAGA_MAX_COMPENSATION_ATTEMPTS = 0
    settings.SAGA_CIRCUIT_FAILURES = 1000  # the window alone, no circuit here
    steps = fake.steps()
    purchase_id = start_saga()
    fake.fail("create_payment", grpc.StatusCode.FAILED_PRECONDITION)
    fake.fail_always("cancel_order", grpc.StatusCode.UNAVAILABLE)

    for _ in range(20):  # far more than any count budget used to allow
        result = services.sagas_advance(purchase_ids=[purchase_id], owner="w1", steps=steps)
        assert result[purchase_id].state == SagaState.COMPENSATING
    fake.heal("cancel_order")
    result = services.sagas_advance(purchase_ids=[purchase_id], owner="w1", steps=steps)

    assert result[purchase_id].state == SagaState.FAILED
    assert fake.count("cancel_order") == 21 and fake.count("release_inventory") == 1
    assert published(purchase_id)[-1].purchase_status == PurchaseStatus.FAILED
