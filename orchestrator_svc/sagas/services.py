"""Writes of the saga orchestrator: start sagas, advance them, resume what stalled.

The transitions of a saga are machine.py's; running them for many sagas at once,
with leases, is engine.py's. This module is what the consumer, the Celery tasks, the
admin and the `saga` command call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Now
from opentelemetry import context as otel_context
from psycopg2.extras import Json

from common.contract.events import PurchaseCreated
from common.errors import ApplicationError, ErrorCode
from common.observability.tracing import inject_context, run_in_context
from orchestrator_svc.sagas import metrics
from orchestrator_svc.sagas.conf import config
from orchestrator_svc.sagas.engine import Advance, sagas_advance
from orchestrator_svc.sagas.machine import Steps, retry_delay
from orchestrator_svc.sagas.models import (
    ACTIVE_STATES,
    Saga,
    SagaPhase,
    SagaState,
    SagaStepLog,
    StepLogStatus,
    db_now,
    now_plus,
)
from orchestrator_svc.sagas.steps import PURCHASE_STEPS

logger = logging.getLogger(__name__)

__all__ = [
    "Advance",
    "retry_delay",
    "saga_advance",
    "saga_compensation_retry",
    "saga_resume",
    "saga_start",
    "sagas_advance",
    "sagas_resume_stalled",
    "sagas_start",
]


# ---------------------------------------------------------------- enqueueing


def enqueue_advance(purchase_ids: Sequence[str]) -> None:
    """Hand sagas to the Celery workers, a batch per task. Outside transactions only
    (see `_enqueue_on_commit`)."""
    # Imported here: tasks.py imports this module (tasks run services, services enqueue).
    from orchestrator_svc.sagas.tasks import advance_sagas

    size = max(config().batch_size, 1)
    for first in range(0, len(purchase_ids), size):
        advance_sagas.delay(list(purchase_ids[first : first + size]))


def _enqueue_on_commit(purchase_ids: Sequence[str]) -> None:
    # robust: the saga rows are durable whatever the broker says; if this enqueue
    # fails, the periodic resume picks the sagas up. The commit may come later, outside
    # the span that wanted the enqueue (a consumer's batch): keep the task in its trace.
    ids = list(purchase_ids)
    if not ids:
        return
    ctx = otel_context.get_current()
    transaction.on_commit(lambda: run_in_context(ctx, enqueue_advance, ids), robust=True)


# ------------------------------------------------------------------- start


@dataclass(frozen=True)
class Started:
    """A PurchaseCreated to start a saga for, with the trace context it arrived in."""

    event: PurchaseCreated
    trace: dict[str, str]


_START_COLUMNS = (
    "purchase_id, customer_id, payload, trace, state, step_index, phase, attempt, sequence,"
    " lease_owner, next_run_at, last_error, created_at, updated_at"
)


@transaction.atomic
def sagas_start(*, starts: Iterable[Started]) -> list[str]:
    """Create the sagas of many purchases at once (one INSERT; a purchase whose saga
    exists is left as it is) and hand them to the workers after commit. Answers the
    purchase ids of the sagas created.

    Like `saga_start`, a repeat of a saga that has not started its first step is handed
    over again (harmless: the lease lets one worker act).
    """
    unique = {start.event.purchase_id: start for start in starts}
    if not unique:
        return []
    row = "(%s::uuid, %s, %s, %s, 'STARTED', 0, 'READY', 0, 0, '', now(), '', now(), now())"
    params = [
        value
        for pid, start in unique.items()
        for value in (pid, start.event.customer_id, Json(start.event.to_json()), Json(start.trace))
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO saga ({_START_COLUMNS}) VALUES {', '.join([row] * len(unique))}"
            " ON CONFLICT (purchase_id) DO NOTHING RETURNING purchase_id",
            params,
        )
        created = [str(found) for (found,) in cursor.fetchall()]
    repeats = set(unique) - set(created)
    again = (
        [
            str(pid)
            for pid in Saga.objects.filter(
                purchase_id__in=repeats, state=SagaState.STARTED
            ).values_list("purchase_id", flat=True)
        ]
        if repeats
        else []
    )
    if created:
        count = len(created)
        metrics.count_on_commit(lambda: metrics.STARTED.inc(count))
    _enqueue_on_commit([*created, *again])
    return created


@transaction.atomic
def saga_start(*, event: PurchaseCreated) -> tuple[Saga, bool]:
    """Create the saga of a purchase once and hand it to a worker after commit.

    A repeat answers the existing row; while that saga has not started its first step
    it is handed over again (harmless: the lease lets one worker act).
    """
    saga, created = Saga.objects.get_or_create(
        purchase_id=event.purchase_id,
        defaults={
            "customer_id": event.customer_id,
            "payload": event.to_json(),
            "trace": dict(inject_context({})),
        },
    )
    if created:
        metrics.count_on_commit(metrics.STARTED.inc)
    if saga.state == SagaState.STARTED:
        _enqueue_on_commit([str(saga.purchase_id)])
    return saga, created


# ----------------------------------------------------------------- advance


def saga_advance(*, purchase_id: str, owner: str, steps: Steps = PURCHASE_STEPS) -> Advance:
    """`sagas_advance` for one saga: take its lease and run it as far as it goes now."""
    return sagas_advance(purchase_ids=[purchase_id], owner=owner, steps=steps)[str(purchase_id)]


# ------------------------------------------------------------------ resume


def sagas_resume_stalled(*, limit: int = 500) -> list[str]:
    """Hand over again every saga in flight that nobody advances: no live lease and its
    next run overdue by SAGA_STALL_SECONDS (a lost task, a killed worker, a lost
    enqueue). Answers their purchase ids."""
    stall = timedelta(seconds=config().stall_seconds)
    with transaction.atomic():
        ids = [
            str(pid)
            for pid in Saga.objects.select_for_update(skip_locked=True)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=Now()))
            .filter(state__in=ACTIVE_STATES, next_run_at__lt=now_plus(-stall))
            .order_by("next_run_at")
            .values_list("purchase_id", flat=True)[:limit]
        ]
        if ids:
            # Due now, and not stalled again before SAGA_STALL_SECONDS pass.
            Saga.objects.filter(purchase_id__in=ids).update(next_run_at=Now(), updated_at=Now())
            _enqueue_on_commit(ids)
    if ids:
        logger.info("resumed %d stalled saga(s): %s", len(ids), ", ".join(ids[:20]))
    return ids


def sagas_release_dead_leases(*, host: str, alive: Callable[[int], bool]) -> list[str]:
    """Free the leases held by workers of `host` that are no longer alive (lease owners
    are "host:pid:suffix", tasks.lease_owner) and hand their sagas over at once."""
    with transaction.atomic():
        held = list(
            Saga.objects.select_for_update(skip_locked=True)
            .filter(state__in=ACTIVE_STATES, lease_until__gt=Now())
            .filter(lease_owner__startswith=f"{host}:")
            .values_list("purchase_id", "lease_owner")
        )
        verdicts: dict[str, bool] = {}  # owner -> dead
        for _, owner in held:
            if owner not in verdicts:
                pid = _owner_pid(owner)
                verdicts[owner] = pid is not None and not alive(pid)
        ids = [str(purchase_id) for purchase_id, owner in held if verdicts[owner]]
        if ids:
            Saga.objects.filter(purchase_id__in=ids).update(
                lease_owner="", lease_until=None, next_run_at=Now(), updated_at=Now()
            )
            _enqueue_on_commit(ids)
    if ids:
        dead = sorted(owner for owner, is_dead in verdicts.items() if is_dead)
        logger.info("freed %d saga(s) leased by dead workers %s", len(ids), dead)
    return ids


def _owner_pid(owner: str) -> int | None:
    """The process id in a lease owner's name, if it has one."""
    try:
        pid = int(owner.split(":")[1])
    except (IndexError, ValueError):
        return None
    return pid if pid > 0 else None


@transaction.atomic
def saga_resume(*, purchase_id: str) -> Saga:
    """Operator action: make a saga in flight due now and hand it to a worker
    (a live lease still wins: its holder is working on it)."""
    saga = _locked(purchase_id)
    if saga.is_final:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION, f"The saga is {saga.state}; there is nothing to resume."
        )
    saga.next_run_at = db_now(saga)
    saga.save(update_fields=["next_run_at", "updated_at"])
    _enqueue_on_commit([str(saga.purchase_id)])
    return saga


@transaction.atomic
def saga_compensation_retry(*, purchase_id: str, steps: Steps = PURCHASE_STEPS) -> Saga:
    """Operator action for a saga in NEEDS_ATTENTION, once its cause is fixed: give the
    failed compensation a fresh budget and carry on compensating in reverse order."""
    saga = _locked(purchase_id)
    if saga.state != SagaState.NEEDS_ATTENTION:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION,
            f"The saga is {saga.state}; only a saga that needs attention can be compensated.",
        )
    saga.state = SagaState.COMPENSATING
    saga.attempt = 0
    saga.call_started_at = None  # a fresh window
    saga.phase = SagaPhase.READY
    saga.next_run_at = db_now(saga)
    saga.lease_owner, saga.lease_until = "", None
    SagaStepLog.objects.create(
        saga=saga,
        step=steps[saga.step_index].step.value,
        status=StepLogStatus.RETRY,
        attempt=saga.attempt,
        error="compensation resumed by an operator",
    )
    saga.save()
    _enqueue_on_commit([str(saga.purchase_id)])
    return saga


def _locked(purchase_id: str) -> Saga:
    try:
        return Saga.objects.select_for_update().annotate(db_now=Now()).get(pk=purchase_id)
    except (Saga.DoesNotExist, ValueError, ValidationError) as exc:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No saga has this purchase id.") from exc
