"""Writes of the saga orchestrator: start sagas, advance them, resume what stalled,
cancel them.

The transitions of a saga are machine.py's; running them for many sagas at once,
with leases, is engine.py's. This module is what the consumer, the Celery tasks, the
admin and the `saga` command call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Now
from opentelemetry import context as otel_context
from psycopg2.extras import Json

from common.contract.events import CancelRequester, PurchaseCancelRequested, PurchaseCreated
from common.errors import ApplicationError, ErrorCode
from common.observability.tracing import inject_context, run_in_context
from orchestrator_svc.sagas import metrics
from orchestrator_svc.sagas.conf import config
from orchestrator_svc.sagas.engine import Advance, sagas_advance
from orchestrator_svc.sagas.machine import Steps, retry_delay
from orchestrator_svc.sagas.models import (
    ACTIVE_STATES,
    FORWARD_STATES,
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
    "saga_cancel",
    "saga_compensation_retry",
    "saga_resume",
    "saga_start",
    "sagas_advance",
    "sagas_cancel",
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
    " lease_owner, next_run_at, last_error, stop_reason, created_at, updated_at, deadline_at,"
    " cancel_requested_at, cancel_requested_by, effect_possible"
)
# One statement: take the cancels that came first (PendingCancel) and insert the sagas
# with them, a deadline SAGA_DEADLINE_SECONDS after the database's now(). created_at is
# the clock's time, not the transaction's: sagas started in one transaction keep their
# order ("newest first").
_START_SQL = (
    "WITH v (purchase_id, customer_id, payload, trace) AS (VALUES {rows}),"
    " early AS (DELETE FROM saga_pending_cancel p USING v"
    "  WHERE p.purchase_id = v.purchase_id AND p.customer_id = v.customer_id"
    "  RETURNING p.purchase_id, p.requested_at, p.requested_by)"
    " INSERT INTO saga ({columns})"
    " SELECT v.purchase_id, v.customer_id, v.payload, v.trace, 'STARTED', 0, 'READY', 0, 0,"
    "  '', now(), '', '', clock_timestamp(), clock_timestamp(),"
    "  now() + %s * interval '1 second',"
    "  early.requested_at, coalesce(early.requested_by, ''), false"
    " FROM v LEFT JOIN early ON early.purchase_id = v.purchase_id"
    " ON CONFLICT (purchase_id) DO NOTHING RETURNING purchase_id"
)


@transaction.atomic
def sagas_start(*, starts: Iterable[Started]) -> list[str]:
    """Create the sagas of many purchases at once (one statement; a purchase whose saga
    exists is left as it is) and hand them to the workers after commit. Answers the
    purchase ids of the sagas created.

    Each saga's deadline is set now (SAGA_DEADLINE_SECONDS); a cancel that arrived
    before its saga (a PendingCancel) is applied as the saga is created, so it ends
    CANCELLED without a call. A repeat of a saga that has not started its first step is
    handed over again (harmless: the lease lets one worker act).
    """
    unique = {start.event.purchase_id: start for start in starts}
    if not unique:
        return []
    row = "(%s::uuid, %s::bigint, %s::jsonb, %s::jsonb)"
    params: list[Any] = [
        value
        for pid, start in unique.items()
        for value in (pid, start.event.customer_id, Json(start.event.to_json()), Json(start.trace))
    ]
    params.append(config().deadline_seconds)
    sql = _START_SQL.format(rows=", ".join([row] * len(unique)), columns=_START_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
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
    """`sagas_start` of one purchase, in the current trace: answers its saga and whether
    this created it. A repeat answers the existing row."""
    created = sagas_start(starts=[Started(event, dict(inject_context({})))])
    return Saga.objects.get(pk=event.purchase_id), bool(created)


# ------------------------------------------------------------------ cancel

# Record the first cancel of each saga still going forward (of that customer), and make
# it due now unless its call is in flight: the machine stops it at its next transition.
_CANCEL_SQL = (
    "UPDATE saga SET cancel_requested_at = now(), cancel_requested_by = v.requested_by,"
    " next_run_at = CASE WHEN saga.phase = 'CALLING' THEN saga.next_run_at ELSE now() END,"
    " updated_at = now()"
    " FROM (VALUES {rows}) AS v (purchase_id, customer_id, requested_by)"
    " WHERE saga.purchase_id = v.purchase_id AND saga.customer_id = v.customer_id"
    " AND saga.cancel_requested_at IS NULL AND saga.state IN ('STARTED', 'RUNNING')"
    " RETURNING saga.purchase_id"
)
# Keep the cancels whose saga does not exist yet: the saga starts cancelled.
_PENDING_SQL = (
    "INSERT INTO saga_pending_cancel (purchase_id, customer_id, requested_by, requested_at)"
    " SELECT v.purchase_id, v.customer_id, v.requested_by, now()"
    " FROM (VALUES {rows}) AS v (purchase_id, customer_id, requested_by)"
    " WHERE NOT EXISTS (SELECT 1 FROM saga WHERE saga.purchase_id = v.purchase_id)"
    " ON CONFLICT (purchase_id) DO NOTHING RETURNING purchase_id"
)
_CANCEL_ROW = "(%s::uuid, %s::bigint, %s)"


@transaction.atomic
def sagas_cancel(*, cancels: Iterable[PurchaseCancelRequested]) -> list[str]:
    """Apply cancels of purchases (the `purchase` topic's PurchaseCancelRequested):
    record each on its saga, the first time only, and hand the saga to a worker at once
    after commit (one waiting on a retry or held by a circuit acts now). Answers the
    purchase ids of the sagas it applied to.

    A cancel of a saga already compensating, final, or of another customer changes
    nothing; one that finds no saga is kept (PendingCancel) and the saga starts
    cancelled. Idempotent: a repeat finds the cancel recorded (or kept).
    """
    unique: dict[str, PurchaseCancelRequested] = {}
    for cancel in cancels:
        unique.setdefault(cancel.purchase_id, cancel)  # the first asker is recorded
    if not unique:
        return []
    rows = ", ".join([_CANCEL_ROW] * len(unique))
    params = [
        value
        for pid, cancel in unique.items()
        for value in (pid, cancel.customer_id, str(cancel.requested_by))
    ]
    with connection.cursor() as cursor:
        cursor.execute(_CANCEL_SQL.format(rows=rows), params)
        applied = [str(found) for (found,) in cursor.fetchall()]
        rest = [cancel for pid, cancel in unique.items() if pid not in set(applied)]
        pending: list[str] = []
        if rest:
            cursor.execute(
                _PENDING_SQL.format(rows=", ".join([_CANCEL_ROW] * len(rest))),
                [v for c in rest for v in (c.purchase_id, c.customer_id, str(c.requested_by))],
            )
            pending = [str(found) for (found,) in cursor.fetchall()]
    _count_cancels(unique, applied=set(applied), pending=set(pending))
    if pending:
        logger.info("kept %d cancel(s) of sagas not started yet: %s", len(pending), pending[:20])
    _enqueue_on_commit(applied)
    return applied


def _count_cancels(
    cancels: dict[str, PurchaseCancelRequested], *, applied: set[str], pending: set[str]
) -> None:
    counts: dict[tuple[str, str], int] = {}
    for pid, cancel in cancels.items():
        outcome = "applied" if pid in applied else "pending" if pid in pending else "ignored"
        key = (str(cancel.requested_by), outcome)
        counts[key] = counts.get(key, 0) + 1
    for (by, outcome), count in counts.items():
        metrics.count_on_commit(partial(metrics.CANCEL_REQUESTS.labels(by, outcome).inc, count))


@transaction.atomic
def saga_cancel(*, purchase_id: str) -> Saga:
    """Operator action (admin, `saga cancel`): cancel a saga still going forward, in the
    orchestrator's own row (no Kafka: the row is ours), and hand it to a worker now. The
    purchase learns it from the saga's final event (CANCELLED). Asking again is
    harmless; a saga that ended, or already compensates, is refused with the reason."""
    saga = _locked(purchase_id)
    if saga.state == SagaState.COMPENSATING:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION,
            "The saga is COMPENSATING already (a step failed); it ends FAILED.",
        )
    if saga.state not in FORWARD_STATES:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION, f"The saga is {saga.state}; there is nothing to cancel."
        )
    if saga.cancel_requested_at is None:
        saga.cancel_requested_at = db_now(saga)
        saga.cancel_requested_by = CancelRequester.STAFF
        if saga.phase != SagaPhase.CALLING:
            saga.next_run_at = db_now(saga)
        saga.save(
            update_fields=[
                "cancel_requested_at",
                "cancel_requested_by",
                "next_run_at",
                "updated_at",
            ]
        )
        metrics.count_on_commit(metrics.CANCEL_REQUESTS.labels("staff", "applied").inc)
    _enqueue_on_commit([str(saga.purchase_id)])
    return saga


# ----------------------------------------------------------------- advance


def saga_advance(*, purchase_id: str, owner: str, steps: Steps = PURCHASE_STEPS) -> Advance:
    """`sagas_advance` for one saga: take its lease and run it as far as it goes now."""
    return sagas_advance(purchase_ids=[purchase_id], owner=owner, steps=steps)[str(purchase_id)]


# ------------------------------------------------------------------ resume


def sagas_resume_stalled(*, limit: int = 500) -> list[str]:
    """Hand over again every saga in flight that nobody advances: no live lease and its
    next run overdue by SAGA_STALL_SECONDS (a lost task, a killed worker, a lost
    enqueue); and every saga going forward past its deadline that waits (on a retry, or
    held by an open circuit), so it stops now instead of at its due time. Answers their
    purchase ids."""
    stall = timedelta(seconds=config().stall_seconds)
    with transaction.atomic():
        free = Saga.objects.select_for_update(skip_locked=True).filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=Now())
        )
        ids = [
            str(pid)
            for pid in free.filter(state__in=ACTIVE_STATES, next_run_at__lt=now_plus(-stall))
            .order_by("next_run_at")
            .values_list("purchase_id", flat=True)[:limit]
        ]
        ids += [
            str(pid)
            for pid in free.filter(
                state__in=FORWARD_STATES, deadline_at__lte=Now(), next_run_at__gt=Now()
            )
            .order_by("deadline_at")
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
