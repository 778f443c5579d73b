"""The Celery tasks are thin: they call services and schedule what services ask for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest
from django.db import OperationalError
from django.utils import timezone

from orchestrator_svc.sagas import services, tasks
from orchestrator_svc.sagas.models import Saga, SagaPhase, SagaState
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


def test_a_run_cut_short_by_the_database_is_retried_under_the_same_lease_owner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owners: list[str] = []

    def database_away(**kwargs: Any) -> Any:
        owners.append(kwargs["owner"])
        raise OperationalError("the database system is shutting down")

    retried: list[dict[str, Any]] = []

    def retry(**kwargs: Any) -> Exception:
        retried.append(kwargs)
        return RuntimeError("retry scheduled")

    monkeypatch.setattr(services, "sagas_advance", database_away)
    monkeypatch.setattr(tasks.advance_sagas, "retry", retry)

    with pytest.raises(RuntimeError, match="retry scheduled"):
        tasks.advance_sagas(["p1", "p2"])

    assert len(retried) == 1
    assert retried[0]["args"] == (["p1", "p2"],)
    assert retried[0]["kwargs"] == {"owner": owners[0]}  # takes its own leases back


def test_a_lease_still_held_by_the_same_owner_is_taken_back_at_once(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_id = start_saga()
    # A run of "w1" began the first call and lost the database before recording it.
    Saga.objects.filter(pk=purchase_id).update(
        state=SagaState.RUNNING,
        phase=SagaPhase.CALLING,
        attempt=1,
        lease_owner="w1",
        lease_until=timezone.now() + timedelta(seconds=15),
    )
    steps = fake.steps()

    other = services.sagas_advance(purchase_ids=[purchase_id], owner="w2", steps=steps)
    assert other[purchase_id].acted is False  # a live lease of someone else: hands off
    again = services.sagas_advance(purchase_ids=[purchase_id], owner="w1", steps=steps)

    assert again[purchase_id].state == SagaState.COMPLETED
    assert fake.calls[0] == "reserve_inventory"  # the interrupted call is made again


def test_a_starting_worker_frees_the_leases_of_dead_workers_of_its_host(
    start_saga: Callable[..., str], enqueued: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    dead, alive, elsewhere = start_saga(), start_saga(), start_saga()
    until = timezone.now() + timedelta(seconds=15)
    for purchase_id, owner in (
        (dead, "h1:4001:aa"),
        (alive, "h1:4002:bb"),
        (elsewhere, "h2:4001:cc"),
    ):
        Saga.objects.filter(pk=purchase_id).update(lease_owner=owner, lease_until=until)
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        freed = services.sagas_release_dead_leases(host="h1", alive=lambda pid: pid != 4001)

    assert freed == [dead] and enqueued == [dead]
    assert (saga_row(dead).lease_owner, saga_row(dead).lease_until) == ("", None)
    assert saga_row(alive).lease_owner == "h1:4002:bb"
    assert saga_row(elsewhere).lease_owner == "h2:4001:cc"
