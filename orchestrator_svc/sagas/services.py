"""Writes of the saga orchestrator: start a saga, advance it, resume what stalled.

The state machine (`saga_advance`) runs the steps of `steps.PURCHASE_STEPS` forward
and, after a refusal, their compensations in reverse order. The rules it keeps:

- One advancer at a time: a worker first takes the saga's lease with one conditional
  UPDATE (free or expired lease, saga still in flight, next run due). Every later
  transition re-reads the row `FOR UPDATE`, checks the lease is still its own and
  renews it. No transaction stays open across a gRPC call.
- Every transition is one transaction: the saga row, a step-log row and, for a step
  status change, one `purchase-result` event in the outbox with the next sequence.
- A business refusal (classify -> COMPENSATE) of a command marks the step FAILED and
  compensates from that step down to the first: the refused step's own compensation
  is a no-op when nothing happened, and undoes it when its effect happened without a
  reply. A transient fault (RETRY) releases the lease and schedules the same call
  again with exponential backoff and jitter; when the step's budget is spent it is
  FAILED too. A compensation retries until its budget is spent, then the saga waits
  in NEEDS_ATTENTION for a person (a refused compensation goes there at once:
  repeating it cannot change the answer).
- A call that started and never recorded an outcome (its worker died) counts as an
  attempt, so a step that kills its worker cannot loop forever.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, Q, Value
from django.db.models.functions import Now
from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Status, StatusCode

from common.errors import ApplicationError, ErrorCode
from common.events import (
    PurchaseCreated,
    PurchaseResult,
    PurchaseStatus,
    StepStatus,
    parse_purchase_created,
)
from common.grpc.errors import Outcome, classify_error
from common.observability.tracing import run_in_context, tracer
from common.outbox.services import outbox_enqueue
from common.topology import Topic
from orchestrator_svc.sagas import metrics
from orchestrator_svc.sagas.models import (
    ACTIVE_STATES,
    Saga,
    SagaPhase,
    SagaState,
    SagaStepLog,
    StepLogStatus,
)
from orchestrator_svc.sagas.steps import PURCHASE_STEPS, StepCall, StepDefinition, StepRefused

logger = logging.getLogger(__name__)

ERROR_MAX_CHARS = 500  # events stay small; the full story is in the worker's log
DUE_TOLERANCE = timedelta(seconds=1)  # a countdown task may fire a hair before its due time
INTERRUPTED = "interrupted: the worker making the call was lost"

Steps = Sequence[StepDefinition]


class LeaseLost(Exception):
    """Another worker took the saga over; this one must stop acting on it."""


@dataclass(frozen=True)
class Advance:
    """What one `saga_advance` did.

    `acted` is False when the saga was not ours to advance (leased by another worker,
    final, or not due yet). `retry_in` is set when a call failed transiently: the
    caller schedules the next advance after that many seconds.
    """

    acted: bool
    state: str | None = None
    retry_in: float | None = None


def _setting(name: str) -> float:
    """A SAGA_* number (orchestrator_svc/config/settings.py documents each)."""
    return float(getattr(settings, name))


# ---------------------------------------------------------------- enqueueing


def enqueue_advance(purchase_id: str) -> None:
    """Hand the saga to a Celery worker. Outside transactions only (see `_enqueue_on_commit`)."""
    from orchestrator_svc.sagas.tasks import advance_saga

    advance_saga.delay(purchase_id)


def _enqueue_on_commit(purchase_id: str) -> None:
    # robust: the saga row is durable whatever the broker says; if this enqueue
    # fails, the periodic resume picks the saga up. The commit may come later, outside
    # the span that wanted the enqueue (a consumer's batch): keep the task in its trace.
    ctx = otel_context.get_current()
    transaction.on_commit(lambda: run_in_context(ctx, enqueue_advance, purchase_id), robust=True)


# ------------------------------------------------------------------- start


@transaction.atomic
def saga_start(*, event: PurchaseCreated) -> tuple[Saga, bool]:
    """Create the saga of a purchase once and hand it to a worker after commit.

    A repeat answers the existing row; while that saga has not started its first step
    it is handed over again (harmless: the lease lets one worker act).
    """
    saga, created = Saga.objects.get_or_create(
        purchase_id=event.purchase_id,
        defaults={"customer_id": event.customer_id, "payload": event.to_json()},
    )
    if created:
        metrics.count_on_commit(metrics.STARTED.inc)
    if saga.state == SagaState.STARTED:
        _enqueue_on_commit(str(saga.purchase_id))
    return saga, created


# ----------------------------------------------------------------- advance


def retry_delay(
    attempt: int, *, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after call number `attempt` failed: base * 2^(attempt-1), capped,
    with equal jitter (50-100 % of that) so retries of many sagas spread out."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + rng() * ceiling / 2


def saga_advance(*, purchase_id: str, owner: str, steps: Steps = PURCHASE_STEPS) -> Advance:
    """Take the saga's lease and run it as far as it goes: forward step after step
    (or compensation after compensation) until it ends or a call must be retried later.

    Idempotent: it re-reads the saga and does nothing unless the lease is free and a
    run is due. `owner` names this invocation in the lease.
    """
    with tracer().start_as_current_span(
        "saga.advance", attributes={"saga.purchase_id": purchase_id}
    ) as span:
        advance = _advance(purchase_id, owner, steps)
        span.set_attribute("saga.acted", advance.acted)
        if advance.state:
            span.set_attribute("saga.state", advance.state)
        return advance


def _advance(purchase_id: str, owner: str, steps: Steps) -> Advance:
    with transaction.atomic():
        if not _lease_take(purchase_id, owner):
            return Advance(acted=False)
        saga = _change(purchase_id, owner, _begin, steps)
    purchase = parse_purchase_created(saga.payload)
    try:
        while saga.phase == SagaPhase.CALLING:
            definition = steps[saga.step_index]
            forward = saga.state == SagaState.RUNNING
            action = "execute" if forward else "compensate"
            call = definition.command if forward else definition.compensation
            # One span per call; a compensation is named and marked as one.
            with tracer().start_as_current_span(
                f"saga.{action} {definition.step.value}",
                attributes={
                    "saga.purchase_id": purchase_id,
                    "saga.step": definition.step.value,
                    "saga.action": action,
                    "saga.compensation": not forward,
                    "saga.attempt": saga.attempt,
                },
            ) as span:
                outcome, error, duration_ms = _call(call, purchase)
                with transaction.atomic():
                    saga = _change(
                        purchase_id, owner, _conclude, steps, outcome, error, duration_ms
                    )
                _record_call(span, definition, action, outcome, error, duration_ms, saga)
    except LeaseLost:
        logger.warning("saga %s: lease taken over by another worker; %s stops", purchase_id, owner)
        return Advance(acted=True)
    retry_in = None
    if saga.phase == SagaPhase.WAITING and saga.next_run_at is not None:
        retry_in = max((saga.next_run_at - _db_now(saga)).total_seconds(), 0.0)
    return Advance(acted=True, state=saga.state, retry_in=retry_in)


def _plus(delta: timedelta) -> ExpressionWrapper:
    return ExpressionWrapper(Now() + Value(delta), output_field=DateTimeField())


def _lease_take(purchase_id: str, owner: str) -> bool:
    lease = timedelta(seconds=_setting("SAGA_LEASE_SECONDS"))
    taken = Saga.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=Now()),
        Q(next_run_at__isnull=True) | Q(next_run_at__lte=_plus(DUE_TOLERANCE)),
        purchase_id=purchase_id,
        state__in=ACTIVE_STATES,
    ).update(lease_owner=owner, lease_until=_plus(lease), updated_at=Now())
    return taken == 1


def _db_now(saga: Saga) -> datetime:
    now: datetime = saga.db_now  # type: ignore[attr-defined]
    return now


def _change(purchase_id: str, owner: str, change: Callable[..., None], *args: Any) -> Saga:
    """Inside the caller's transaction: apply `change(saga, *args)` as the lease holder
    and renew the lease unless the change released it."""
    saga = Saga.objects.select_for_update().annotate(db_now=Now()).get(pk=purchase_id)
    if saga.lease_owner != owner or saga.is_final:
        raise LeaseLost(purchase_id)
    change(saga, *args)
    if saga.lease_owner == owner:
        saga.lease_until = _db_now(saga) + timedelta(seconds=_setting("SAGA_LEASE_SECONDS"))
    saga.save()
    return saga


def _call(call: StepCall, purchase: PurchaseCreated) -> tuple[Outcome | None, str, int]:
    """Make one call with the step deadline: (None if OK else what to do, error, ms)."""
    started = time.monotonic()
    outcome: Outcome | None = None
    error = ""
    try:
        call(purchase, _setting("SAGA_STEP_DEADLINE_SECONDS"))
    except grpc.RpcError as exc:
        outcome, error = classify_error(exc), _describe(exc)
    except StepRefused as exc:
        outcome, error = Outcome.COMPENSATE, f"REFUSED: {exc}"
    except Exception as exc:  # a bug or a broken channel: retried within the budget
        name = getattr(call, "__name__", call)
        logger.exception("saga %s: %s raised", purchase.purchase_id, name)
        outcome, error = Outcome.RETRY, f"{type(exc).__name__}: {exc}"
    return outcome, error[:ERROR_MAX_CHARS], int((time.monotonic() - started) * 1000)


def _record_call(
    span: Span,
    definition: StepDefinition,
    action: str,
    outcome: Outcome | None,
    error: str,
    duration_ms: int,
    saga: Saga,
) -> None:
    """The committed outcome of one call, on its span and in the step histogram."""
    label = "ok" if outcome is None else "refused" if outcome is Outcome.COMPENSATE else "error"
    span.set_attribute("saga.outcome", label)
    span.set_attribute("saga.state", saga.state)
    if outcome is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    metrics.STEP_DURATION.labels(definition.step.value, action, label).observe(duration_ms / 1000)


def _describe(exc: grpc.RpcError) -> str:
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    name = code.name if isinstance(code, grpc.StatusCode) else "NO_STATUS"
    return f"{name}: {details}"


def _forward(saga: Saga) -> bool:
    return saga.state in (SagaState.STARTED, SagaState.RUNNING)


def _budget(saga: Saga) -> int:
    if _forward(saga):
        return int(_setting("SAGA_MAX_ATTEMPTS"))
    return int(_setting("SAGA_MAX_COMPENSATION_ATTEMPTS"))


def _begin(saga: Saga, steps: Steps) -> None:
    """Start the next call of the current step, or give up when its budget is spent."""
    if saga.phase == SagaPhase.CALLING:
        # The previous lease holder started this call and died before its outcome.
        saga.last_error = INTERRUPTED
        _log(saga, steps, StepLogStatus.RETRY, error=INTERRUPTED)
        _count_retry(saga, steps)
    if saga.attempt >= _budget(saga):
        _give_up(saga, steps, error=saga.last_error, duration_ms=None)
        return
    saga.attempt += 1
    saga.phase = SagaPhase.CALLING
    if saga.state == SagaState.STARTED:
        saga.state = SagaState.RUNNING
    if _forward(saga):
        _publish(saga, steps, StepStatus.EXECUTE, error=saga.last_error if saga.attempt > 1 else "")


def _conclude(
    saga: Saga, steps: Steps, outcome: Outcome | None, error: str, duration_ms: int
) -> None:
    """Record the outcome of the call in flight and start the next one when it is due now."""
    if saga.phase != SagaPhase.CALLING:
        raise LeaseLost(str(saga.purchase_id))  # not the call we made: someone else moved on
    forward = _forward(saga)
    if outcome is None:
        if forward:
            last = saga.step_index == len(steps) - 1
            final = PurchaseStatus.COMPLETED if last else PurchaseStatus.PENDING
            _publish(saga, steps, StepStatus.SUCCESS, duration_ms=duration_ms, overall=final)
            saga.last_error = ""
            if last:
                _finish(saga, SagaState.COMPLETED)
                return
            saga.step_index += 1
        else:
            first = saga.step_index == 0
            final = PurchaseStatus.FAILED if first else PurchaseStatus.PENDING
            _publish(saga, steps, StepStatus.ROLLBACK, duration_ms=duration_ms, overall=final)
            metrics.count_on_commit(
                metrics.COMPENSATIONS.labels(steps[saga.step_index].step.value).inc
            )
            if first:
                _finish(saga, SagaState.FAILED)
                return
            saga.step_index -= 1
        _next_call(saga, steps)
        return
    saga.last_error = error
    if outcome is Outcome.COMPENSATE:
        if forward:
            _publish(saga, steps, StepStatus.FAILED, error=error, duration_ms=duration_ms)
            _compensate_from_here(saga, steps)
        else:
            _publish(
                saga,
                steps,
                StepStatus.ROLLBACK_FAILED,
                error=f"compensation refused: {error}",
                duration_ms=duration_ms,
                overall=PurchaseStatus.NEEDS_ATTENTION,
            )
            _finish(saga, SagaState.NEEDS_ATTENTION)
        return
    if saga.attempt >= _budget(saga):
        _give_up(saga, steps, error=error, duration_ms=duration_ms)
        return
    _log(saga, steps, StepLogStatus.RETRY, error=error, duration_ms=duration_ms)
    _count_retry(saga, steps)
    delay = retry_delay(
        saga.attempt,
        base=_setting("SAGA_RETRY_BASE_SECONDS"),
        cap=_setting("SAGA_RETRY_MAX_DELAY_SECONDS"),
    )
    saga.phase = SagaPhase.WAITING
    saga.next_run_at = _db_now(saga) + timedelta(seconds=delay)
    _release(saga)


def _give_up(saga: Saga, steps: Steps, *, error: str, duration_ms: int | None) -> None:
    """The current call's budget is spent: a forward step fails and the saga compensates;
    a compensation leaves the saga to a person."""
    reason = f"gave up after {saga.attempt} attempts: {error}"[:ERROR_MAX_CHARS]
    saga.last_error = reason
    if _forward(saga):
        _publish(saga, steps, StepStatus.FAILED, error=reason, duration_ms=duration_ms)
        _compensate_from_here(saga, steps)
        return
    _publish(
        saga,
        steps,
        StepStatus.ROLLBACK_FAILED,
        error=reason,
        duration_ms=duration_ms,
        overall=PurchaseStatus.NEEDS_ATTENTION,
    )
    _finish(saga, SagaState.NEEDS_ATTENTION)


def _compensate_from_here(saga: Saga, steps: Steps) -> None:
    # The failed step itself is compensated first: its effect may have happened
    # without a reply arriving; compensating what never happened is a no-op.
    saga.state = SagaState.COMPENSATING
    _next_call(saga, steps)


def _next_call(saga: Saga, steps: Steps) -> None:
    saga.attempt = 0
    saga.phase = SagaPhase.READY
    _begin(saga, steps)


_FINISHED = {
    SagaState.COMPLETED: metrics.COMPLETED,
    SagaState.FAILED: metrics.FAILED,
    SagaState.NEEDS_ATTENTION: metrics.NEEDS_ATTENTION,
}


def _count_retry(saga: Saga, steps: Steps) -> None:
    action = "execute" if _forward(saga) else "compensate"
    step = steps[saga.step_index].step.value
    metrics.count_on_commit(metrics.STEP_RETRIES.labels(step, action).inc)


def _finish(saga: Saga, state: SagaState) -> None:
    metrics.count_on_commit(_FINISHED[state].inc)
    saga.state = state
    saga.phase = SagaPhase.READY
    saga.next_run_at = None
    _release(saga)


def _release(saga: Saga) -> None:
    saga.lease_owner = ""
    saga.lease_until = None


def _publish(
    saga: Saga,
    steps: Steps,
    status: StepStatus,
    *,
    error: str = "",
    duration_ms: int | None = None,
    overall: PurchaseStatus = PurchaseStatus.PENDING,
) -> None:
    """Record a step status change: a step-log row and one `purchase-result` event."""
    saga.sequence += 1
    step = steps[saga.step_index].step
    error = error[:ERROR_MAX_CHARS]
    SagaStepLog.objects.create(
        saga=saga,
        step=step.value,
        status=status.value,
        attempt=saga.attempt,
        duration_ms=duration_ms,
        error=error,
        sequence=saga.sequence,
    )
    result = PurchaseResult(
        purchase_id=str(saga.purchase_id),
        step=step,
        status=status,
        purchase_status=overall,
        sequence=saga.sequence,
        attempt=saga.attempt,
        error=error,
    )
    outbox_enqueue(
        topic=Topic.PURCHASE_RESULT.value, key=str(saga.purchase_id), payload=result.to_json()
    )


def _log(
    saga: Saga,
    steps: Steps,
    status: StepLogStatus,
    *,
    error: str = "",
    duration_ms: int | None = None,
) -> None:
    """A step-log row that changes no step status (RETRY): nothing is published."""
    SagaStepLog.objects.create(
        saga=saga,
        step=steps[saga.step_index].step.value,
        status=status,
        attempt=saga.attempt,
        duration_ms=duration_ms,
        error=error[:ERROR_MAX_CHARS],
    )


# ------------------------------------------------------------------ resume


def sagas_resume_stalled(*, limit: int = 500) -> list[str]:
    """Hand over again every saga in flight that nobody advances: no live lease and its
    next run overdue by SAGA_STALL_SECONDS (a lost task, a killed worker, a lost
    enqueue). Answers their purchase ids."""
    stall = timedelta(seconds=_setting("SAGA_STALL_SECONDS"))
    with transaction.atomic():
        ids = [
            str(pid)
            for pid in Saga.objects.select_for_update(skip_locked=True)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=Now()))
            .filter(state__in=ACTIVE_STATES, next_run_at__lt=_plus(-stall))
            .order_by("next_run_at")
            .values_list("purchase_id", flat=True)[:limit]
        ]
        if ids:
            # Due now, and not stalled again before SAGA_STALL_SECONDS pass.
            Saga.objects.filter(purchase_id__in=ids).update(next_run_at=Now(), updated_at=Now())
            for purchase_id in ids:
                _enqueue_on_commit(purchase_id)
    if ids:
        logger.info("resumed %d stalled saga(s): %s", len(ids), ", ".join(ids[:20]))
    return ids


@transaction.atomic
def saga_resume(*, purchase_id: str) -> Saga:
    """Operator action: make a saga in flight due now and hand it to a worker
    (a live lease still wins: its holder is working on it)."""
    saga = _locked(purchase_id)
    if saga.is_final:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION, f"The saga is {saga.state}; there is nothing to resume."
        )
    saga.next_run_at = _db_now(saga)
    saga.save(update_fields=["next_run_at", "updated_at"])
    _enqueue_on_commit(str(saga.purchase_id))
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
    saga.phase = SagaPhase.READY
    saga.next_run_at = _db_now(saga)
    _release(saga)
    _log(saga, steps, StepLogStatus.RETRY, error="compensation resumed by an operator")
    saga.save()
    _enqueue_on_commit(str(saga.purchase_id))
    return saga


def _locked(purchase_id: str) -> Saga:
    try:
        return Saga.objects.select_for_update().annotate(db_now=Now()).get(pk=purchase_id)
    except (Saga.DoesNotExist, ValueError, ValidationError) as exc:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No saga has this purchase id.") from exc
