"""The Celery tasks are thin: they call services and schedule what services ask for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from orchestrator_svc.sagas import services, tasks
from orchestrator_svc.sagas.models import SagaState
from orchestrator_svc.tests.fakes import FakeServices, saga_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def scheduled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """advance_sagas.apply_async calls, recorded instead of sent."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        tasks.advance_sagas, "apply_async", lambda args, countdown: calls.append((args, countdown))
    )
    return calls


@pytest.fixture
def fake_steps(monkeypatch: pytest.MonkeyPatch, fake: FakeServices) -> FakeServices:
    steps = fake.steps()
    real = services.sagas_advance
    monkeypatch.setattr(services, "sagas_advance", lambda **kwargs: real(**kwargs, steps=steps))
    return fake


def test_advance_sagas_runs_the_sagas_and_schedules_nothing_when_they_end(
    start_saga: Callable[..., str], fake_steps: FakeServices, scheduled: list[tuple[Any, ...]]
) -> None:
    purchase_ids = [start_saga(), start_saga()]

    tasks.advance_sagas(purchase_ids)

    assert [saga_row(pid).state for pid in purchase_ids] == [SagaState.COMPLETED] * 2
    assert scheduled == []


def test_a_task_queued_for_one_saga_still_runs_it(
    start_saga: Callable[..., str], fake_steps: FakeServices, scheduled: list[tuple[Any, ...]]
) -> None:
    purchase_id = start_saga()

    tasks.advance_saga(purchase_id)

    assert saga_row(purchase_id).state == SagaState.COMPLETED


def test_advance_sagas_schedules_a_saga_again_after_a_transient_fault(
    start_saga: Callable[..., str],
    fake_steps: FakeServices,
    scheduled: list[tuple[Any, ...]],
    settings: Any,
) -> None:
    settings.SAGA_RETRY_BASE_SECONDS = 4
    settings.SAGA_RETRY_MAX_DELAY_SECONDS = 30
    purchase_id = start_saga()
    fake_steps.fail("reserve_inventory", grpc.StatusCode.RESOURCE_EXHAUSTED)

    tasks.advance_sagas([purchase_id])

    assert len(scheduled) == 1
    args, countdown = scheduled[0]
    assert args == ([purchase_id],)
    assert 1.5 <= countdown <= 4.0


def test_the_task_options_allow_redelivery_of_a_task_whose_worker_died() -> None:
    assert tasks.advance_sagas.acks_late is True
    assert tasks.advance_saga.acks_late is True
    assert tasks.resume_stalled_sagas.acks_late is True


def test_each_invocation_takes_the_lease_under_its_own_name() -> None:
    assert tasks.lease_owner() != tasks.lease_owner()


def test_the_beat_schedule_resumes_stalled_sagas_every_few_seconds(settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["resume-stalled-sagas"]
    assert entry["task"] == tasks.resume_stalled_sagas.name
    assert entry["schedule"] <= 10
