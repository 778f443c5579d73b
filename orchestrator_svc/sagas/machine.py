"""The purchase saga's state machine, on one saga row held in memory.

No database and no network here: `SagaMachine.begin` and `SagaMachine.conclude` move
the row's fields and append what the transition produced to `Effects` (step-log rows,
`purchase-result` events, counters to bump after commit). The engine (engine.py) loads
the rows of a whole wave of sagas, runs their transitions and writes every row and
effect of the wave in one transaction.

The rules it keeps:
- Forward, step after step; after a business refusal (Outcome.COMPENSATE) of a
  command the step is FAILED and the saga compensates from that step down to the
  first. The refused step's own compensation is a no-op when nothing happened and
  undoes it when its effect happened without a reply.
- A transient fault (Outcome.RETRY) releases the lease and makes the same call due
  again after an exponential backoff with jitter (a RETRY event says why and when).
  The budget of a call is a time, its retry window, counted from when the call was
  first due: a command whose next try would start past it is FAILED (and the saga
  compensates); a compensation past its (much longer) window leaves the saga in
  NEEDS_ATTENTION for a person. A refused compensation goes there at once: repeating
  it cannot change the answer.
- While the participant of the call is known to be down (its circuit is open:
  circuits.py, asked through `gate`), the saga is held: no call, no attempt, due
  again when the next probe may go; the window still runs.
- A call that started and never recorded an outcome (its worker died) counts as an
  attempt, so a step that kills its worker ends with its window.
- A cancel (`cancel_requested_at`) or the saga's deadline (`deadline_at`) stops a saga
  going forward at its next transition, never in the middle of a call: before a forward
  call begins and when one concludes. The step it stopped at gets a CANCELLED (a cancel)
  or FAILED (the deadline) event; nothing done yet ends the saga at once, else it
  compensates what was done, in reverse, as after a refusal, and ends CANCELLED (a
  cancel) or FAILED (the deadline), the reason on the final event. The step it stopped
  at counts as done when one of its calls may have taken effect (`effect_possible`):
  not when every call was refused by the edge before reaching its participant (down),
  so a cancel or a deadline ends a saga during its participant's outage. A saga already
  compensating is never stopped: it ends as it would have. A cancel that arrives while
  the last call is in flight is honoured too: the customer was told it is under way
  (202), so when that call succeeds the saga undoes every step, the last included, and
  ends CANCELLED; a deadline passed meanwhile lets the completed saga stand.
- Every step status change is one step-log row and one `purchase-result` event with
  the saga's next sequence number.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from common.contract.events import PurchaseResult, PurchaseStatus, StepStatus
from common.grpc.errors import Outcome
from orchestrator_svc.sagas import metrics
from orchestrator_svc.sagas.conf import config
from orchestrator_svc.sagas.models import (
    Saga,
    SagaPhase,
    SagaState,
    SagaStepLog,
    StepLogStatus,
    StopReason,
)
from orchestrator_svc.sagas.steps import BatchCall, StepCall, StepDefinition

ERROR_MAX_CHARS = 500  # events stay small; the full story is in the worker's log
INTERRUPTED = "interrupted: the worker making the call was lost"
HOLD_JITTER_SECONDS = 1.0  # held sagas come due spread over this, not all at once

# The circuit's answer for a participant: None to call now, else seconds to wait.
Gate = Callable[[str], float | None]

Steps = Sequence[StepDefinition]


def retry_window(call: Call) -> float:
    """Seconds a call is retried after it was first due (the settings say how long)."""
    conf = config()
    if not call.forward:
        return conf.compensation_retry_window_seconds
    step = call.definition.step.value
    return conf.step_retry_windows.get(step, conf.step_retry_window_seconds)


def _always_call(participant: str) -> float | None:
    return None


def retry_delay(
    attempt: int, *, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after call number `attempt` failed: base * 2^(attempt-1), capped,
    with equal jitter (50-100 % of that) so retries of many sagas spread out."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + rng() * ceiling / 2


@dataclass(frozen=True)
class CallResult:
    """How a call ended: `outcome` None when it succeeded, else the saga's next move and
    the error; `reached` False only when the failure proves the request never reached
    its participant (common.grpc.errors.never_reached), so it cannot have taken effect."""

    outcome: Outcome | None
    error: str = ""
    duration_ms: int = 0
    reached: bool = True


@dataclass
class Effects:
    """What the transitions of one transaction produced, written by the engine."""

    logs: list[SagaStepLog] = field(default_factory=list)
    events: list[PurchaseResult] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class Call:
    """The call a saga is making now: which step, which way, what to call."""

    definition: StepDefinition
    forward: bool

    @property
    def action(self) -> str:
        return "execute" if self.forward else "compensate"

    @property
    def function(self) -> StepCall:
        return self.definition.command if self.forward else self.definition.compensation

    @property
    def batch_function(self) -> BatchCall | None:
        """The batch form of the call, when the step has one."""
        definition = self.definition
        return definition.batch_command if self.forward else definition.batch_compensation


def current_call(saga: Saga, steps: Steps) -> Call:
    """The call `saga` makes (or would make) now."""
    forward = saga.state in (SagaState.STARTED, SagaState.RUNNING)
    return Call(steps[saga.step_index], forward)


_FINISHED = {
    SagaState.COMPLETED: metrics.COMPLETED,
    SagaState.FAILED: metrics.FAILED,
    SagaState.NEEDS_ATTENTION: metrics.NEEDS_ATTENTION,
    SagaState.CANCELLED: metrics.CANCELLED,
}


class SagaMachine:
    """The transitions of one saga row; `now` is the database's clock for this
    transaction (due times and leases are compared with the database's `now()`);
    `gate` says whether a participant may be called now (circuits.hold_for)."""

    def __init__(
        self,
        saga: Saga,
        steps: Steps,
        effects: Effects,
        now: datetime,
        gate: Gate = _always_call,
    ) -> None:
        self.saga = saga
        self.steps = steps
        self.effects = effects
        self.now = now
        self.gate = gate

    # ------------------------------------------------------------ questions

    @property
    def forward(self) -> bool:
        return current_call(self.saga, self.steps).forward

    @property
    def calling(self) -> bool:
        return self.saga.phase == SagaPhase.CALLING and not self.saga.is_final

    def current_call(self) -> Call:
        return current_call(self.saga, self.steps)

    # ---------------------------------------------------------- transitions

    def begin(self) -> None:
        """Start the next call of the current step, hold it while its participant is
        down, or give up when its window is spent."""
        saga = self.saga
        if saga.phase == SagaPhase.CALLING:
            # The previous lease holder started this call and died before its outcome.
            saga.last_error = INTERRUPTED
            saga.effect_possible = saga.effect_possible or self.forward
            self._log(StepLogStatus.RETRY, error=INTERRUPTED)
            self._count_retry()
        if self.forward and (reason := self._stop_asked()) is not None:
            self._stop(reason)
            return
        if saga.call_started_at is None:
            saga.call_started_at = self.now
        if self._spent(self.now):
            self._give_up(error=saga.last_error, duration_ms=None)
            return
        participant = self.current_call().definition.participant
        wait = self.gate(participant)
        if wait is not None:
            self._hold(participant, wait)
            return
        saga.attempt += 1
        saga.phase = SagaPhase.CALLING
        if saga.state == SagaState.STARTED:
            saga.state = SagaState.RUNNING
        if self.forward:
            self._publish(StepStatus.EXECUTE, error=saga.last_error if saga.attempt > 1 else "")

    def conclude(self, result: CallResult) -> None:
        """Record how the call in flight ended and start the next call when it is due
        now. The caller checked that the call is ours."""
        if result.outcome is None:
            self._succeeded(result.duration_ms)
        elif result.outcome is Outcome.COMPENSATE:
            self._refused(result.error, result.duration_ms)
        else:
            self._failed_transiently(result.error, result.duration_ms, reached=result.reached)

    def _succeeded(self, duration_ms: int) -> None:
        saga = self.saga
        if self.forward:
            last = saga.step_index == len(self.steps) - 1
            if last and saga.cancel_requested_at is not None:
                # Cancelled while the last call was in flight: undo it and the rest.
                self._publish(StepStatus.SUCCESS, duration_ms=duration_ms)
                saga.effect_possible = True
                self._stop(StopReason.CANCELLED)
                return
            overall = PurchaseStatus.COMPLETED if last else PurchaseStatus.PENDING
            self._publish(StepStatus.SUCCESS, duration_ms=duration_ms, overall=overall)
            saga.last_error = ""
            if last:
                self._finish(SagaState.COMPLETED)
                return
            saga.step_index += 1
        else:
            first = saga.step_index == 0
            state, final = self._undone()
            overall = final if first else PurchaseStatus.PENDING
            self._publish(StepStatus.ROLLBACK, duration_ms=duration_ms, overall=overall)
            step = self.steps[saga.step_index].step.value
            self.effects.after_commit.append(metrics.COMPENSATIONS.labels(step).inc)
            if first:
                self._finish(state)
                return
            saga.step_index -= 1
        self._next_call()

    def _refused(self, error: str, duration_ms: int) -> None:
        self.saga.last_error = error
        if self.forward:
            self._publish(StepStatus.FAILED, error=error, duration_ms=duration_ms)
            self._compensate_from_here()
            return
        self._publish(
            StepStatus.ROLLBACK_FAILED,
            error=f"compensation refused: {error}",
            duration_ms=duration_ms,
            overall=PurchaseStatus.NEEDS_ATTENTION,
        )
        self._finish(SagaState.NEEDS_ATTENTION)

    def _failed_transiently(self, error: str, duration_ms: int, *, reached: bool) -> None:
        saga = self.saga
        if self.forward and reached:
            saga.effect_possible = True
        if self.forward and (reason := self._stop_asked()) is not None:
            self._stop(reason, error=error, duration_ms=duration_ms)  # no retry: it stops
            return
        saga.last_error = error
        delay = retry_delay(
            saga.attempt,
            base=config().retry_base_seconds,
            cap=config().retry_max_delay_seconds,
        )
        due = self.now + timedelta(seconds=delay)
        if self._spent(due):  # the next try would start past the window: no next try
            self._give_up(error=error, duration_ms=duration_ms)
            return
        self._publish(StepStatus.RETRY, error=error, duration_ms=duration_ms, retry_at=due)
        self._count_retry()
        self._wait_until(due)

    def _hold(self, participant: str, wait: float) -> None:
        """The participant's circuit is open: no call now; due again when the next probe
        may go (not past the window's end, where the step gives up). Announced once per
        hold, not each time the saga is held again."""
        saga = self.saga
        wait += random.random() * HOLD_JITTER_SECONDS
        due = min(self.now + timedelta(seconds=wait), self._window_end())
        reason = f"waiting: {participant} is unavailable (its circuit is open)"
        if saga.last_error != reason:
            saga.last_error = reason
            self._publish(StepStatus.RETRY, error=reason, retry_at=due)
        self.effects.after_commit.append(metrics.CALLS_HELD.labels(participant).inc)
        self._wait_until(due)

    def _wait_until(self, due: datetime) -> None:
        self.saga.phase = SagaPhase.WAITING
        self.saga.next_run_at = due
        self._release()

    def _give_up(self, *, error: str, duration_ms: int | None) -> None:
        """The current call's window is spent: a forward step fails and the saga
        compensates; a compensation leaves the saga to a person."""
        saga = self.saga
        assert saga.call_started_at is not None
        seconds = (self.now - saga.call_started_at).total_seconds()
        reason = f"gave up after {saga.attempt} attempts in {seconds:.0f} s: {error}"
        reason = reason[:ERROR_MAX_CHARS]
        saga.last_error = reason
        if self.forward:
            self._publish(StepStatus.FAILED, error=reason, duration_ms=duration_ms)
            self._compensate_from_here()
            return
        self._publish(
            StepStatus.ROLLBACK_FAILED,
            error=reason,
            duration_ms=duration_ms,
            overall=PurchaseStatus.NEEDS_ATTENTION,
        )
        self._finish(SagaState.NEEDS_ATTENTION)

    def _stop_asked(self) -> StopReason | None:
        """Why a saga going forward must stop now, if it must: a cancel first (someone
        asked), then the deadline."""
        saga = self.saga
        if saga.cancel_requested_at is not None:
            return StopReason.CANCELLED
        if saga.deadline_at is not None and self.now >= saga.deadline_at:
            return StopReason.DEADLINE
        return None

    def _stop(self, reason: StopReason, *, error: str = "", duration_ms: int | None = None) -> None:
        """Stop going forward: end at once when no step's command was made, else
        compensate from the last step whose command was made (its call may have taken
        effect), down to the first."""
        saga = self.saga
        saga.stop_reason = reason
        if reason == StopReason.CANCELLED:
            status, why = (
                StepStatus.CANCELLED,
                f"cancelled at the {saga.cancel_requested_by or 'customer'}'s request",
            )
        else:
            assert saga.deadline_at is not None
            status, why = (
                StepStatus.FAILED,
                f"deadline: the saga passed its deadline ({saga.deadline_at.isoformat()})",
            )
            self.effects.after_commit.append(metrics.DEADLINE_EXCEEDED.inc)
        if error:
            why = f"{why}; the last call: {error}"
        saga.last_error = why[:ERROR_MAX_CHARS]
        acted = saga.attempt > 0 and saga.effect_possible
        if not acted and saga.step_index == 0:  # nothing took effect: nothing to undo
            state, final = self._undone()
            self._publish(status, error=why, duration_ms=duration_ms, overall=final)
            self._finish(state)
            return
        self._publish(status, error=why, duration_ms=duration_ms)
        if not acted:  # this step's command never took effect: undo from the one before
            saga.step_index -= 1
        self._compensate_from_here()

    def _undone(self) -> tuple[SagaState, PurchaseStatus]:
        """How a saga whose steps are all undone ends: CANCELLED after a cancel, else
        FAILED (a step's refusal or spent window, or the deadline)."""
        if self.saga.stop_reason == StopReason.CANCELLED:
            return SagaState.CANCELLED, PurchaseStatus.CANCELLED
        return SagaState.FAILED, PurchaseStatus.FAILED

    def _compensate_from_here(self) -> None:
        # The failed step itself is compensated first: its effect may have happened
        # without a reply arriving; compensating what never happened is a no-op.
        self.saga.state = SagaState.COMPENSATING
        self._next_call()

    def _next_call(self) -> None:
        self.saga.attempt = 0
        self.saga.effect_possible = False
        self.saga.phase = SagaPhase.READY
        self.saga.call_started_at = None
        self.begin()

    def _finish(self, state: SagaState) -> None:
        self.effects.after_commit.append(_FINISHED[state].inc)
        self.saga.state = state
        self.saga.phase = SagaPhase.READY
        self.saga.next_run_at = None
        self.saga.call_started_at = None
        self._release()

    def _release(self) -> None:
        self.saga.lease_owner = ""
        self.saga.lease_until = None

    # -------------------------------------------------------------- effects

    def _window_end(self) -> datetime:
        assert self.saga.call_started_at is not None
        return self.saga.call_started_at + timedelta(seconds=retry_window(self.current_call()))

    def _spent(self, at: datetime) -> bool:
        """Whether a call starting `at` would be past the budget: the window, or the
        optional cap on the number of calls."""
        conf = config()
        cap = conf.max_attempts if self.forward else conf.max_compensation_attempts
        return at >= self._window_end() or (cap > 0 and self.saga.attempt >= cap)

    def _count_retry(self) -> None:
        call = self.current_call()
        self.effects.after_commit.append(
            metrics.STEP_RETRIES.labels(call.definition.step.value, call.action).inc
        )

    def _publish(
        self,
        status: StepStatus,
        *,
        error: str = "",
        duration_ms: int | None = None,
        overall: PurchaseStatus = PurchaseStatus.PENDING,
        retry_at: datetime | None = None,
    ) -> None:
        """A step status change: a step-log row and one `purchase-result` event."""
        saga = self.saga
        saga.sequence += 1
        step = self.steps[saga.step_index].step
        error = error[:ERROR_MAX_CHARS]
        self.effects.logs.append(
            SagaStepLog(
                saga=saga,
                step=step.value,
                status=status.value,
                attempt=saga.attempt,
                duration_ms=duration_ms,
                error=error,
                sequence=saga.sequence,
            )
        )
        self.effects.events.append(
            PurchaseResult(
                purchase_id=str(saga.purchase_id),
                step=step,
                status=status,
                purchase_status=overall,
                sequence=saga.sequence,
                attempt=saga.attempt,
                error=error,
                retry_at=retry_at.isoformat() if retry_at is not None else "",
                # Why it ended, on the final event only (the contract's `reason`).
                reason=str(saga.stop_reason) if overall.is_final else "",
            )
        )

    def _log(
        self, status: StepLogStatus, *, error: str = "", duration_ms: int | None = None
    ) -> None:
        """A step-log row without an event (an interrupted call)."""
        self.effects.logs.append(
            SagaStepLog(
                saga=self.saga,
                step=self.steps[self.saga.step_index].step.value,
                status=status,
                attempt=self.saga.attempt,
                duration_ms=duration_ms,
                error=error[:ERROR_MAX_CHARS],
            )
        )
