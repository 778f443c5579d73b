"""The orchestrator's own settings (SAGA_*): declared once here, with their defaults.

config/settings.py takes them from the environment (`config.from_environment()`); code
reads `config().lease_seconds`. checks.py checks them when any process starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.conf import AppSettings, setting
from common.contract.events import Step


def step_windows(value: Any) -> dict[str, float]:
    """ "CREATE_PAYMENT=600,CREATE_ORDER=120" (or a dict) -> {"CREATE_PAYMENT": 600.0, ...}."""
    if not isinstance(value, str):
        return {str(step): float(seconds) for step, seconds in dict(value).items()}
    windows = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, _, seconds = part.partition("=")
        windows[Step(name.strip()).value] = float(seconds)
    return windows


@dataclass(frozen=True)
class SagaSettings:
    # Deadline of every gRPC call a step makes.
    step_deadline_seconds: float = 5.0
    # How long a forward step's call is retried after its first try before the step
    # fails and the saga compensates (a business refusal compensates at once). Per step:
    # SAGA_STEP_RETRY_WINDOWS="CREATE_PAYMENT=600,CREATE_ORDER=120" (Step names).
    step_retry_window_seconds: float = 300.0
    step_retry_windows: dict[str, float] = setting({}, convert=step_windows)
    # How long a compensation is retried before the saga waits in NEEDS_ATTENTION for a
    # person: long, since giving up leaves the earlier steps' effects in place.
    compensation_retry_window_seconds: float = 86400.0
    # Optional caps on the calls within a window (0: none; the window alone decides).
    max_attempts: int = 0
    max_compensation_attempts: int = 0
    # A participant's circuit (per worker process) opens after this many calls in a row
    # failed transiently; while open, sagas waiting on it are held without calling and
    # one probe call is let through every circuit_open_seconds; when one succeeds the
    # circuit closes and the held sagas are resumed at once.
    circuit_failures: int = 5
    circuit_open_seconds: float = 5.0
    # Retry n waits about base * 2^(n-1) seconds (capped), jittered to 50-100 % of that.
    retry_base_seconds: float = 2.0
    retry_max_delay_seconds: float = 30.0
    # How long a worker owns a saga without recording progress (renewed at each transition).
    lease_seconds: float = 15.0
    # A saga without a lease whose next run is overdue by this much is resumed.
    stall_seconds: float = 15.0
    # Sagas one task advances together: their calls in flight at once, their transitions
    # recorded in one transaction per wave (engine.py).
    batch_size: int = 100
    # Threads per worker process that make a wave's gRPC calls (they wait on the network).
    call_concurrency: int = 64
    # Celery beat (config/settings.py) re-enqueues stalled sagas this often, and runs the
    # consistency audit (audit.py) this often over the sagas that ended in the last
    # audit_window_seconds: a window longer than the interval, so runs overlap.
    resume_interval_seconds: float = 5.0
    audit_interval_seconds: float = 300.0
    audit_window_seconds: float = 900.0
    # Every saga's deadline, stored on its row when it starts (now + this): a saga still
    # going forward past it stops and compensates (it ends FAILED, reason "deadline").
    # Well above the step retry windows, so a deadline ends only a saga that cannot settle;
    # it never cuts a compensation short.
    deadline_seconds: float = 3600.0


config = AppSettings(SagaSettings, prefix="SAGA_")
