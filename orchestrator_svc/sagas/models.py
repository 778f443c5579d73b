"""The saga's persistent state machine: orchestrator_db is its source of truth.

Celery executes, the rows remember: a worker that dies loses nothing but time,
because whoever takes the saga's lease next reads where it stood from here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import DateTimeField, ExpressionWrapper, Q, Value
from django.db.models.functions import Now
from django.utils import timezone

from common.contract.events import (
    END_REASON_CANCELLED,
    END_REASON_DEADLINE,
    CancelRequester,
    Step,
    StepStatus,
)


class SagaState(models.TextChoices):
    STARTED = "STARTED"  # created from PurchaseCreated; no step has begun
    RUNNING = "RUNNING"  # running the steps forward
    COMPENSATING = "COMPENSATING"  # undoing the steps in reverse order
    COMPLETED = "COMPLETED"  # every step succeeded
    FAILED = "FAILED"  # a step was refused or gave up; every step is compensated
    NEEDS_ATTENTION = "NEEDS_ATTENTION"  # a compensation could not finish; a person decides
    CANCELLED = "CANCELLED"  # cancelled before it completed; every step done is compensated


ACTIVE_STATES = (SagaState.STARTED, SagaState.RUNNING, SagaState.COMPENSATING)
FORWARD_STATES = (SagaState.STARTED, SagaState.RUNNING)
FINAL_STATES = (
    SagaState.COMPLETED,
    SagaState.FAILED,
    SagaState.NEEDS_ATTENTION,
    SagaState.CANCELLED,
)


class StopReason(models.TextChoices):
    """Why a saga stopped going forward when no step decided it (the final event's
    `reason`): a cancel, or its deadline. Empty: a step's own outcome."""

    NONE = "", "a step's own outcome"
    CANCELLED = END_REASON_CANCELLED, "cancelled"
    DEADLINE = END_REASON_DEADLINE, "deadline"


class SagaPhase(models.TextChoices):
    """Where the current step's call stands (the step is `step_index`, the direction `state`)."""

    READY = "READY"  # the next call has not started; `attempt` calls were made so far
    CALLING = "CALLING"  # call number `attempt` has started, its outcome is not recorded yet
    WAITING = "WAITING"  # the last call failed transiently; the next is due at `next_run_at`


class Saga(models.Model):
    """One purchase saga.

    Keyed by the purchase id, so a redelivered PurchaseCreated finds the same row.
    `lease_owner`/`lease_until` guard against two workers advancing it at once;
    `sequence` is the last sequence number published on `purchase-result`.
    """

    purchase_id = models.UUIDField(primary_key=True)
    customer_id = models.BigIntegerField()
    payload = models.JSONField(help_text="The PurchaseCreated event that started the saga.")
    state = models.CharField(max_length=20, choices=SagaState.choices, default=SagaState.STARTED)
    step_index = models.PositiveSmallIntegerField(
        default=0, help_text="Index of the current step in the saga's step table."
    )
    phase = models.CharField(max_length=10, choices=SagaPhase.choices, default=SagaPhase.READY)
    attempt = models.PositiveIntegerField(
        default=0, help_text="Calls made so far for the current step in the current direction."
    )
    sequence = models.PositiveIntegerField(
        default=0, help_text="Sequence number of the last event published for this saga."
    )
    lease_owner = models.CharField(max_length=120, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(
        null=True,
        blank=True,
        default=timezone.now,
        help_text="When the saga is next due to be advanced (a retry's due time); "
        "past it by SAGA_STALL_SECONDS without a lease, it counts as stalled.",
    )
    call_started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the current call (this step, this direction) was first due: its "
        "retry window counts from here.",
    )
    last_error = models.TextField(blank=True, default="")
    deadline_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set at start (SAGA_DEADLINE_SECONDS): still going forward past it, the "
        "saga stops and compensates (FAILED, reason deadline). Empty: started before "
        "deadlines existed, none.",
    )
    cancel_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a cancel was first asked for (later ones change nothing); the saga "
        "stops going forward at its next transition.",
    )
    cancel_requested_by = models.CharField(
        max_length=10, blank=True, default="", choices=[(r.value, r.value) for r in CancelRequester]
    )
    effect_possible = models.BooleanField(
        default=False,
        help_text="Whether a command of the current step may have taken effect (a call "
        "that succeeded, timed out or was lost, not one the edge refused before it reached "
        "the participant): a cancel or deadline undoes the current step only then.",
    )
    stop_reason = models.CharField(
        max_length=10,
        blank=True,
        default=StopReason.NONE,
        choices=StopReason.choices,
        help_text="Why the saga stopped going forward and compensates, when no step "
        "decided it: the final event's reason.",
    )
    trace = models.JSONField(
        default=dict,
        blank=True,
        help_text="Trace context (W3C traceparent) of the message that started the saga: "
        "every later run of the saga continues that trace.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "saga"
        indexes = [
            models.Index(fields=["state", "updated_at"]),
            # The periodic resume scans only sagas that are still in flight.
            models.Index(
                fields=["next_run_at"],
                name="saga_active_next_run",
                condition=Q(state__in=["STARTED", "RUNNING", "COMPENSATING"]),
            ),
            # The periodic resume finds the sagas going forward past their deadline.
            models.Index(
                fields=["deadline_at"],
                name="saga_forward_deadline",
                condition=Q(state__in=["STARTED", "RUNNING"]),
            ),
        ]

    def __str__(self) -> str:
        return f"saga {self.purchase_id} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


class PendingCancel(models.Model):
    """A cancel that arrived before its purchase's saga existed (its PurchaseCreated not
    yet consumed, or lost to the dead-letter topic): kept, so the saga starts cancelled
    and ends CANCELLED without a call. Consumed when the saga starts."""

    purchase_id = models.UUIDField(primary_key=True)
    customer_id = models.BigIntegerField()
    requested_by = models.CharField(
        max_length=10, choices=[(r.value, r.value) for r in CancelRequester]
    )
    requested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "saga_pending_cancel"

    def __str__(self) -> str:
        return f"pending cancel of {self.purchase_id}"


class StepLogStatus(models.TextChoices):
    """The step statuses of `purchase-result` events.

    RETRY records a transient failure, or a saga held while its participant's circuit
    is open, after which the same call is made again (published, with when); a call
    interrupted by a lost worker is logged as a RETRY without an event.
    """

    EXECUTE = StepStatus.EXECUTE.value
    SUCCESS = StepStatus.SUCCESS.value
    FAILED = StepStatus.FAILED.value
    ROLLBACK = StepStatus.ROLLBACK.value
    ROLLBACK_FAILED = StepStatus.ROLLBACK_FAILED.value
    RETRY = StepStatus.RETRY.value
    CANCELLED = StepStatus.CANCELLED.value


class SagaStepLog(models.Model):
    """One transition of a saga: what happened to which step, on which attempt, how long
    the call took and why it failed. Append-only."""

    id = models.BigAutoField(primary_key=True)
    saga = models.ForeignKey(Saga, on_delete=models.CASCADE, related_name="step_logs")
    step = models.CharField(max_length=40, choices=[(s.value, s.value) for s in Step])
    status = models.CharField(max_length=20, choices=StepLogStatus.choices)
    attempt = models.PositiveIntegerField(default=1)
    duration_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Duration of the call this row concludes."
    )
    error = models.TextField(blank=True, default="")
    sequence = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Sequence of the published event; empty for an interrupted call.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "saga_step_log"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.step} {self.status} (attempt {self.attempt})"


def now_plus(delta: timedelta) -> ExpressionWrapper:
    """The database's `now()` + `delta`: leases and due times follow the database clock."""
    return ExpressionWrapper(Now() + Value(delta), output_field=DateTimeField())


def db_now(saga: Saga) -> datetime:
    """The database's `now()` read with a saga row (`.annotate(db_now=Now())`)."""
    now: datetime = saga.db_now  # type: ignore[attr-defined]
    return now


class AuditFindingKind(models.TextChoices):
    """Which participant's record disagrees with the saga's outcome (audit.py)."""

    RESERVATION = "RESERVATION"  # the stock is held, or not, against the outcome
    ORDER = "ORDER"  # the order is missing, or in the wrong status
    PAYMENT = "PAYMENT"  # the payment is missing, or in the wrong status
    AMOUNT = "AMOUNT"  # the order, the payment and the saga disagree on the amount


class AuditFinding(models.Model):
    """A discrepancy the consistency audit found between a finished saga and a
    participant's record, with the evidence. One row per saga and kind: an audit that
    finds it again only updates `last_seen_at` and `times_seen`."""

    id = models.BigAutoField(primary_key=True)
    saga = models.ForeignKey(Saga, on_delete=models.CASCADE, related_name="audit_findings")
    kind = models.CharField(max_length=20, choices=AuditFindingKind.choices)
    saga_state = models.CharField(max_length=20, choices=SagaState.choices)
    detail = models.TextField(help_text="What is wrong, in words.")
    evidence = models.JSONField(
        default=dict, help_text="What each participant answered for the purchase."
    )
    repaired_at = models.DateTimeField(
        null=True, blank=True, help_text="When the audit repaired it by a compensation."
    )
    times_seen = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "saga_audit_finding"
        ordering = ["-first_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["saga", "kind"], name="audit_finding_saga_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} of saga {self.saga_id}"
