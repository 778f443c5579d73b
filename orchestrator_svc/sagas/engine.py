"""The saga engine: advances many sagas at once, in waves.

One invocation (`sagas_advance`, run by a Celery task) takes the leases of the sagas it
was handed and runs them as far as they go:

    take   one transaction: lock the due sagas, take their leases, begin their calls
    call   every saga's current call at once (gRPC, outside any transaction)
    record one transaction: re-lock them, check each lease is still ours, record each
           outcome and begin the next call; then call again, until none is calling

So a wave of N sagas costs one transaction (a SELECT ... FOR UPDATE, one UPDATE of
the rows, one INSERT of step-log rows, one of outbox rows) instead of N, and its calls
wait for each other's network time instead of queueing behind it. The guarantees of
one saga at a time hold per saga: one lease holder, no transaction open across a call,
every transition committed before the next call starts. What a transition does is
machine.py's business; this module is plumbing, tracing and metrics.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial

import grpc
from django.db import connection, transaction
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from common.contract.events import PurchaseCreated, parse_purchase_created
from common.contract.topics import Topic
from common.grpc.errors import (
    Outcome,
    classify_error,
    details_of,
    never_reached,
    status_code_of,
)
from common.kafka.messages import PoisonMessage
from common.observability.tracing import extract_context, run_in_context, tracer
from common.outbox.services import OutboxEvent, Statement, outbox_enqueue_many
from orchestrator_svc.sagas import circuits, metrics
from orchestrator_svc.sagas.conf import config
from orchestrator_svc.sagas.machine import (
    ERROR_MAX_CHARS,
    Call,
    CallResult,
    Effects,
    SagaMachine,
    Steps,
    current_call,
)
from orchestrator_svc.sagas.models import (
    ACTIVE_STATES,
    Saga,
    SagaPhase,
    SagaStepLog,
    db_now,
)
from orchestrator_svc.sagas.steps import PURCHASE_STEPS, BatchCall, StepRefused

logger = logging.getLogger(__name__)

DUE_TOLERANCE = timedelta(seconds=1)  # a countdown task may fire a hair before its due time
_WAKE_LIMIT = 5000  # sagas woken at once when a circuit closes; the rest come due by themselves


@dataclass(frozen=True)
class Advance:
    """What one run did to one saga.

    `acted` is False when the saga was not ours to advance (leased by another worker,
    final, or not due yet). `retry_in` is set when a call failed transiently: the
    caller schedules the next advance after that many seconds.
    """

    acted: bool
    state: str | None = None
    retry_in: float | None = None


@dataclass
class _Run:
    """One saga this invocation holds the lease of."""

    saga: Saga
    purchase: PurchaseCreated
    span: Span  # saga.advance, child of the trace the saga started in
    context: otel_context.Context
    call: Call | None = None
    call_span: Span | None = None
    call_context: otel_context.Context | None = None
    result: CallResult = CallResult(None)
    lost: bool = False

    @property
    def purchase_id(self) -> str:
        return str(self.saga.purchase_id)

    @property
    def event_context(self) -> otel_context.Context:
        """The trace context its events continue: the call's span, else the saga's."""
        return self.call_context or self.context


def sagas_advance(
    *,
    purchase_ids: Sequence[str],
    owner: str,
    steps: Steps = PURCHASE_STEPS,
    fill_to: int = 0,
) -> dict[str, Advance]:
    """Take the leases of the due sagas among `purchase_ids` and run each as far as it
    goes now: forward step after step (or compensation after compensation) until it
    ends or a call must be retried later. Answers what happened to each saga it ran
    and to each id it was given.

    `fill_to` > 0 also takes other due sagas nobody holds, up to that many in all: when
    tasks queue up behind busy workers, the first to run takes the sagas of those
    behind it, which then find nothing left to do. So batches grow with the load.

    Idempotent: a saga that is leased by another worker, final or not due is left
    alone (`acted=False`). `owner` names this invocation in the leases.
    """
    results = {str(pid): Advance(acted=False) for pid in purchase_ids}
    runs = _take(list(results), owner, steps, fill_to)
    recovered: set[str] = set()
    try:
        while calling := [run for run in runs if not run.lost and _is_calling(run)]:
            recovered |= _call_all(calling, steps)
            _record(calling, owner, steps)
    finally:
        for run in runs:
            results[run.purchase_id] = _end(run)
    for purchase_id in _wake(recovered, steps):
        results[purchase_id] = replace(results.get(purchase_id, Advance(False)), retry_in=0.0)
    return results


# ------------------------------------------------------------------- waves


# The saga rows a wave locks, read with the database's clock. Plain SQL: compiling the
# ORM's Q filters cost more than the queries themselves (about 1 ms a wave).
_COLUMNS = ", ".join(str(field.column) for field in Saga._meta.concrete_fields)
_SELECT = f"SELECT {_COLUMNS}, statement_timestamp() AS db_now FROM saga"
# In flight, due (a countdown task may fire a hair early) and nobody's, or `owner`'s
# still (its earlier run was cut short by a database error). The states are those of
# the partial index saga_active_next_run, which serves the fill.
_ACTIVE = f"state IN ({', '.join(repr(str(state)) for state in ACTIVE_STATES)})"
_DUE = (
    f"{_ACTIVE}"
    " AND (lease_until IS NULL OR lease_until < statement_timestamp() OR lease_owner = %s)"
    " AND (next_run_at IS NULL OR next_run_at <= statement_timestamp() + %s)"
)
# One lock order for every taker (purchase id): no deadlocks between them.
_TAKE_SQL = (
    f"{_SELECT} WHERE purchase_id = ANY(%s::uuid[]) AND {_DUE} ORDER BY purchase_id FOR UPDATE"
)
# Others' sagas are only taken if free now (SKIP LOCKED): this never waits.
_FILL_SQL = (
    f"{_SELECT} WHERE purchase_id <> ALL(%s::uuid[]) AND {_DUE}"
    " ORDER BY next_run_at LIMIT %s FOR UPDATE SKIP LOCKED"
)
_RELOCK_SQL = f"{_SELECT} WHERE purchase_id = ANY(%s::uuid[]) ORDER BY purchase_id FOR UPDATE"


def _locked(sql: str, params: list[object]) -> list[Saga]:
    """The saga rows `sql` selects and locks, each with its `db_now`."""
    return list(Saga.objects.raw(sql, params))


def _take(purchase_ids: list[str], owner: str, steps: Steps, fill_to: int) -> list[_Run]:
    """Lock the due sagas, take their leases and begin their calls (one transaction)."""
    lease = timedelta(seconds=config().lease_seconds)
    with transaction.atomic():
        sagas = _locked(_TAKE_SQL, [purchase_ids, owner, DUE_TOLERANCE])
        if fill_to > len(sagas):
            sagas += _locked(_FILL_SQL, [purchase_ids, owner, DUE_TOLERANCE, fill_to - len(sagas)])
        if not sagas:
            return []
        effects = Effects()
        runs = []
        for saga in sagas:
            try:
                purchase = parse_purchase_created(saga.payload)
            except PoisonMessage as exc:
                # Stored by an older version (say, before prices travelled): one such row
                # must not stop its batch. It stays in flight, visible in the admin.
                logger.error("saga %s: its stored purchase cannot be read: %s", saga.pk, exc)
                continue
            saga.lease_owner = owner
            saga.lease_until = db_now(saga) + lease
            run = _open(saga, purchase)
            SagaMachine(saga, steps, effects, db_now(saga), circuits.hold_for).begin()
            runs.append(run)
        _write(runs, effects, owner)
    return runs


def _record(calling: list[_Run], owner: str, steps: Steps) -> None:
    """Record the outcomes of a wave's calls and begin the next calls (one transaction).

    A saga whose lease was taken over meanwhile (this worker was too slow and its
    lease expired) is dropped: its new holder decides, this outcome is forgotten.
    """
    with transaction.atomic():
        fresh = {
            str(saga.purchase_id): saga
            for saga in _locked(_RELOCK_SQL, [[run.purchase_id for run in calling]])
        }
        effects = Effects()
        kept = []
        for run in calling:
            saga = fresh.get(run.purchase_id)
            if (
                saga is None
                or saga.lease_owner != owner
                or saga.is_final
                or saga.phase != SagaPhase.CALLING
            ):
                logger.warning(
                    "saga %s: lease taken over by another worker; %s stops", run.purchase_id, owner
                )
                run.lost = True
                continue
            run.saga = saga
            machine = SagaMachine(saga, steps, effects, db_now(saga), circuits.hold_for)
            machine.conclude(run.result)
            kept.append(run)
        _write(kept, effects, owner)
    for run in calling:
        _close_call(run)


def _write(runs: list[_Run], effects: Effects, owner: str) -> None:
    """Inside the wave's transaction: the saga rows (leases renewed unless released),
    their step-log rows, their events in the outbox, counters after commit."""
    if not runs:
        return
    lease = timedelta(seconds=config().lease_seconds)
    for run in runs:
        saga = run.saga
        if saga.lease_owner == owner:
            saga.lease_until = db_now(saga) + lease
        saga.updated_at = db_now(saga)
    writes = [_update_sagas([run.saga for run in runs])]
    if effects.logs:
        writes.append(_insert_logs(effects.logs))
    contexts = {run.purchase_id: run.event_context for run in runs}
    # The rows, their log and their events: one round trip to the database.
    outbox_enqueue_many(
        (
            OutboxEvent(
                topic=Topic.PURCHASE_RESULT,
                key=event.purchase_id,
                payload=event.to_json(),
                context=contexts[event.purchase_id],
            )
            for event in effects.events
        ),
        along_with=writes,
    )
    if effects.after_commit:
        bumps = list(effects.after_commit)
        transaction.on_commit(lambda: [bump() for bump in bumps], robust=True)


_SAGA_FIELDS = (
    "state",
    "step_index",
    "phase",
    "attempt",
    "sequence",
    "lease_owner",
    "lease_until",
    "next_run_at",
    "call_started_at",
    "last_error",
    "updated_at",
    "stop_reason",
    "effect_possible",
)


def _insert_logs(logs: list[SagaStepLog]) -> Statement:
    """One INSERT for the step-log rows of the wave (plain SQL, as `_update_sagas`)."""
    row = "(%s::uuid, %s, %s, %s, %s, %s, %s, now())"
    params = [
        value
        for log in logs
        for value in (
            str(log.saga_id),
            log.step,
            log.status,
            log.attempt,
            log.duration_ms,
            log.error,
            log.sequence,
        )
    ]
    return (
        "INSERT INTO saga_step_log"
        " (saga_id, step, status, attempt, duration_ms, error, sequence, created_at)"
        f" VALUES {', '.join([row] * len(logs))}",
        params,
    )


def _update_sagas(sagas: list[Saga]) -> Statement:
    """One UPDATE for every row of the wave (Django's bulk_update builds a CASE per
    field and row, which costs more Python than the wave's whole SQL)."""
    row = "(%s::uuid, %s, %s::smallint, %s, %s::integer, %s::integer, %s, %s::timestamptz,"
    row += " %s::timestamptz, %s::timestamptz, %s, %s::timestamptz, %s, %s::boolean)"
    sql = (
        f"UPDATE saga SET {', '.join(f'{name} = v.{name}' for name in _SAGA_FIELDS)}"
        f" FROM (VALUES {', '.join([row] * len(sagas))})"
        f" AS v(purchase_id, {', '.join(_SAGA_FIELDS)}) WHERE saga.purchase_id = v.purchase_id"
    )
    params = [
        value
        for saga in sagas
        for value in (str(saga.purchase_id), *(getattr(saga, name) for name in _SAGA_FIELDS))
    ]
    return sql, params


# ------------------------------------------------------------------- calls


def _is_calling(run: _Run) -> bool:
    return run.saga.phase == SagaPhase.CALLING and not run.saga.is_final


_pool_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    """This process's threads for a wave's calls (made after a fork, never inherited)."""
    pid = os.getpid()
    with _pool_lock:
        pool = _pools.get(pid)
        if pool is None:
            size = config().call_concurrency
            pool = _pools[pid] = ThreadPoolExecutor(size, thread_name_prefix="saga-call")
        return pool


def _call_all(calling: list[_Run], steps: Steps) -> set[str]:
    """Make every run's current call at once; each run keeps its outcome. Answers the
    participants whose circuit this closed (a call answered after an outage).

    Runs making the same call share one batch call when the step has a batch form
    (also a lone run: the participants answer a batch set-based, cheaper than the
    single call's ORM path). A wave with one call to make makes it on this thread.
    """
    groups: dict[tuple[str, bool], list[_Run]] = {}
    for run in calling:
        _open_call(run, steps)
        assert run.call is not None
        groups.setdefault((run.call.definition.step.value, run.call.forward), []).append(run)
    calls: list[tuple[list[_Run], Callable[[], list[CallResult]]]] = []
    for runs in groups.values():
        batch = runs[0].call.batch_function if runs[0].call is not None else None
        if batch is not None:
            calls.append((runs, partial(_call_batch, runs, batch)))
        else:
            calls += [([run], partial(_call_alone, run)) for run in runs]
    if len(calls) == 1:  # one call to make: on this thread, no hop to the pool
        runs, call = calls[0]
        answered = [(runs, call())]
    else:
        pool = _pool()
        futures = [(runs, pool.submit(call)) for runs, call in calls]
        answered = [(runs, future.result()) for runs, future in futures]
    recovered = set()
    for runs, results in answered:
        for run, result in zip(runs, results, strict=True):
            run.result = result
        assert runs[0].call is not None
        participant = runs[0].call.definition.participant
        if all(result.outcome is Outcome.RETRY for result in results):
            circuits.call_failed(participant)  # no useful answer: it may be down
        elif circuits.call_answered(participant):
            recovered.add(participant)
    return recovered


# The sagas held on the given steps (their participant's circuit was open) and nobody's,
# made due now, the longest held first: one statement, each row checked again as it is
# updated (a saga that moved on meanwhile is left alone).
_WAKE_SQL = (
    "UPDATE saga SET next_run_at = statement_timestamp()"
    " WHERE phase = 'WAITING' AND purchase_id IN ("
    "  SELECT purchase_id FROM saga"
    f"  WHERE {_ACTIVE} AND phase = 'WAITING'"
    "  AND step_index = ANY(%s) AND (lease_until IS NULL OR lease_until < statement_timestamp())"
    "  ORDER BY next_run_at LIMIT %s)"
    " RETURNING purchase_id"
)


def _wake(participants: set[str], steps: Steps) -> list[str]:
    """Make the sagas waiting on `participants` due now (their circuits closed): answers
    their ids, for the caller to hand over at once instead of at their held due time."""
    if not participants:
        return []
    indexes = [i for i, step in enumerate(steps) if step.participant in participants]
    with connection.cursor() as cursor:
        cursor.execute(_WAKE_SQL, [indexes, _WAKE_LIMIT])
        woken = [str(pid) for (pid,) in cursor.fetchall()]
    if woken:
        logger.info("%s answered again: %d waiting sagas resumed", sorted(participants), len(woken))
    return woken


def _call_alone(run: _Run) -> list[CallResult]:
    """`_call` on a pool thread, in the run's trace."""
    return [run_in_context(run.event_context, _call, run)]


def _call(run: _Run) -> CallResult:
    """Make one call with the step deadline: (None if OK else what to do, error, ms)."""
    assert run.call is not None
    started = time.monotonic()
    try:
        run.call.function(run.purchase, config().step_deadline_seconds)
    except Exception as exc:
        return _judge(exc, run, started)
    return CallResult(None, duration_ms=_ms_since(started))


def _call_batch(runs: list[_Run], batch: BatchCall) -> list[CallResult]:
    """One batch call for `runs` (all making the same call): each run's outcome. A
    batch of one is made in that run's trace, as its single call would be."""
    if len(runs) == 1:
        return run_in_context(runs[0].event_context, _batch_outcomes, runs, batch)
    return _batch_outcomes(runs, batch)


def _batch_outcomes(runs: list[_Run], batch: BatchCall) -> list[CallResult]:
    started = time.monotonic()
    try:
        results = batch([run.purchase for run in runs], config().step_deadline_seconds)
    except Exception as exc:  # the batch as a whole: the same outcome for every run
        return [_judge(exc, run, started) for run in runs]
    return [
        CallResult(None, duration_ms=_ms_since(started))
        if result is None
        else _judge(result, run, started)
        for run, result in zip(runs, results, strict=True)
    ]


def _judge(exc: Exception, run: _Run, started: float) -> CallResult:
    """What a failed call means for the saga: compensate or retry, and why."""
    reached = True
    if isinstance(exc, grpc.RpcError):
        outcome, error, reached = classify_error(exc), _describe(exc), not never_reached(exc)
    elif isinstance(exc, StepRefused):
        outcome, error = Outcome.COMPENSATE, f"REFUSED: {exc}"
    else:  # a bug or a broken channel: retried within the budget
        assert run.call is not None
        name = getattr(run.call.function, "__name__", run.call.function)
        logger.error("saga %s: %s raised", run.purchase_id, name, exc_info=exc)
        outcome, error = Outcome.RETRY, f"{type(exc).__name__}: {exc}"
    return CallResult(outcome, error[:ERROR_MAX_CHARS], _ms_since(started), reached)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _describe(exc: grpc.RpcError) -> str:
    code = status_code_of(exc)
    details = details_of(exc) if callable(getattr(exc, "details", None)) else str(exc)
    return f"{code.name if code is not None else 'NO_STATUS'}: {details}"


# ------------------------------------------------- tracing, metrics, results


def _open(saga: Saga, purchase: PurchaseCreated) -> _Run:
    """A run of `saga` with its `saga.advance` span, in the trace the saga started in."""
    parent = extract_context(saga.trace) if saga.trace else otel_context.get_current()
    span = tracer().start_span(
        "saga.advance",
        context=parent,
        attributes={"saga.purchase_id": str(saga.purchase_id)},
    )
    context = trace.set_span_in_context(span, parent)
    return _Run(saga, purchase, span, context)


def _open_call(run: _Run, steps: Steps) -> None:
    """One span per call; a compensation is named and marked as one."""
    call = run.call = current_call(run.saga, steps)
    step = call.definition.step.value
    run.call_span = tracer().start_span(
        f"saga.{call.action} {step}",
        context=run.context,
        attributes={
            "saga.purchase_id": run.purchase_id,
            "saga.step": step,
            "saga.action": call.action,
            "saga.compensation": not call.forward,
            "saga.attempt": run.saga.attempt,
        },
    )
    run.call_context = trace.set_span_in_context(run.call_span, run.context)


def _close_call(run: _Run) -> None:
    """The committed outcome of one call, on its span and in the step histogram."""
    span, call = run.call_span, run.call
    if span is None or call is None:
        return
    outcome, error, duration_ms = run.result.outcome, run.result.error, run.result.duration_ms
    label = "ok" if outcome is None else "refused" if outcome is Outcome.COMPENSATE else "error"
    if not run.lost:
        span.set_attribute("saga.outcome", label)
        span.set_attribute("saga.state", run.saga.state)
        if outcome is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        metrics.STEP_DURATION.labels(call.definition.step.value, call.action, label).observe(
            duration_ms / 1000
        )
    span.end()
    run.call_span = run.call_context = None


def _end(run: _Run) -> Advance:
    if run.call_span is not None:  # an exception between a call and its record
        run.call_span.end()
    span = run.span
    span.set_attribute("saga.acted", True)
    if run.lost:
        span.end()
        return Advance(acted=True)
    saga = run.saga
    span.set_attribute("saga.state", saga.state)
    span.end()
    retry_in = None
    if saga.phase == SagaPhase.WAITING and saga.next_run_at is not None:
        retry_in = max((saga.next_run_at - db_now(saga)).total_seconds(), 0.0)
    return Advance(acted=True, state=saga.state, retry_in=retry_in)
