"""The saga's Prometheus metrics (docs/observability.md).

Counted only when the transition that caused them commits (`count_on_commit`): a
transition rolled back (a lost lease, a crash) never happened, and a saga finishes
exactly once however often its tasks run.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from common.observability.metrics import counter, histogram

STARTED = counter("saga_started", "Sagas created (one per purchase)")
COMPLETED = counter("saga_completed", "Sagas whose every step succeeded")
FAILED = counter("saga_failed", "Sagas rolled back completely after a step failed")
NEEDS_ATTENTION = counter(
    "saga_needs_attention", "Sagas stopped because a compensation could not succeed"
)
CANCELLED = counter(
    "saga_cancelled", "Sagas cancelled before they completed (every step done is undone)"
)
DEADLINE_EXCEEDED = counter(
    "saga_deadline_exceeded",
    "Sagas stopped going forward by their deadline (then compensated: FAILED, reason deadline)",
)
CANCEL_REQUESTS = counter(
    "saga_cancel_requests",
    "Cancels received, by who asked and what they found (applied: the saga stops at its next"
    " transition; pending: no saga yet; ignored: asked before, final or compensating)",
    ["requested_by", "outcome"],  # outcome: applied | pending | ignored
)
STEP_DURATION = histogram(
    "saga_step_duration_seconds",
    "One call of a step: its command (execute) or its compensation (compensate)",
    ["step", "action", "outcome"],  # outcome: ok | refused | error
)
STEP_RETRIES = counter(
    "saga_step_retries",
    "Calls of a step scheduled again after a transient fault",
    ["step", "action"],
)
CIRCUIT_OPENED = counter(
    "saga_circuit_opened",
    "Times a participant's circuit opened in a worker (its calls kept failing)",
    ["participant"],
)
CALLS_HELD = counter(
    "saga_calls_held",
    "Calls not made because their participant's circuit was open (the saga waited)",
    ["participant"],
)
COMPENSATIONS = counter(
    "saga_compensations", "Compensations that succeeded (a step's effect undone)", ["step"]
)

AUDITED = counter("saga_audit_purchases", "Finished sagas the consistency audit checked")
AUDIT_DISCREPANCIES = counter(
    "saga_audit_discrepancies",
    "Discrepancies between a finished saga and a participant's record (first found)",
    ["kind"],  # RESERVATION | ORDER | PAYMENT | AMOUNT
)
AUDIT_REPAIRS = counter(
    "saga_audit_repairs", "Stock a FAILED purchase still held, released by the audit"
)


def count_on_commit(increment: Callable[[], None]) -> None:
    """Apply `increment` when the current transaction commits (at once outside one)."""
    transaction.on_commit(increment, robust=True)
