"""System checks of the saga's definition (`manage.py check`, and every process's start).

A broken step table or a nonsensical budget would otherwise show as sagas that fail in
production: a step without a compensation cannot be undone, a lease shorter than a call
lets two workers make the same call, a compensation window shorter than a participant's
restart sends sagas to NEEDS_ATTENTION for a routine deploy. Django refuses to run any
command (server, worker, consumer) while a check reports an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks

from common.contract.events import Step
from orchestrator_svc.sagas.machine import retry_delay
from orchestrator_svc.sagas.steps import PURCHASE_STEPS, StepDefinition

# A participant restarted by supervisord or Kubernetes answers again within seconds; a
# compensation's budget must outlast that with a wide margin.
PARTICIPANT_RESTART_SECONDS = 60.0

_POSITIVE = (
    "SAGA_STEP_DEADLINE_SECONDS",
    "SAGA_STEP_RETRY_WINDOW_SECONDS",
    "SAGA_COMPENSATION_RETRY_WINDOW_SECONDS",
    "SAGA_LEASE_SECONDS",
    "SAGA_STALL_SECONDS",
    "SAGA_BATCH_SIZE",
    "SAGA_CALL_CONCURRENCY",
    "SAGA_CIRCUIT_FAILURES",
    "SAGA_CIRCUIT_OPEN_SECONDS",
    "SAGA_DEADLINE_SECONDS",
)
_NOT_NEGATIVE = (
    "SAGA_RETRY_BASE_SECONDS",
    "SAGA_RETRY_MAX_DELAY_SECONDS",
    "SAGA_MAX_ATTEMPTS",
    "SAGA_MAX_COMPENSATION_ATTEMPTS",
)


def _error(message: str, number: int, hint: str = "") -> checks.Error:
    return checks.Error(message, hint=hint or None, id=f"sagas.E{number:03d}")


def check_steps(steps: Sequence[StepDefinition]) -> list[checks.CheckMessage]:
    """The step table: every step can be done and undone, once, in the events' words."""
    errors: list[checks.CheckMessage] = []
    if not steps:
        errors.append(_error("The saga has no steps.", 1))
    seen: set[str] = set()
    for index, definition in enumerate(steps):
        name = getattr(definition.step, "value", repr(definition.step))
        where = f"step {index} ({name})"
        if not isinstance(definition.step, Step):
            errors.append(
                _error(
                    f"{where} is not in the purchase-result vocabulary.",
                    2,
                    "Add it to common.contract.events.Step: the purchase service parses each step.",
                )
            )
        if name in seen:
            errors.append(_error(f"{where} appears twice in the saga.", 3))
        seen.add(name)
        if not callable(definition.command):
            errors.append(_error(f"{where} has no command.", 4))
        if not callable(definition.compensation):
            errors.append(
                _error(f"{where} has no compensation.", 5, "Every step must be undoable.")
            )
        if not definition.participant:
            errors.append(_error(f"{where} names no participant (its circuit).", 6))
    return errors


def check_budgets(conf: Any) -> list[checks.CheckMessage]:
    """Deadlines, windows and leases: positive, and consistent with each other."""
    errors: list[checks.CheckMessage] = []

    def number(name: str) -> float | None:
        value = getattr(conf, name, None)
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(_error(f"{name} must be a number, not {value!r}.", 10))
            return None
        return float(value)

    values = {name: number(name) for name in (*_POSITIVE, *_NOT_NEGATIVE)}
    for name in _POSITIVE:
        if (value := values[name]) is not None and value <= 0:
            errors.append(_error(f"{name} must be positive, not {value:g}.", 11))
    for name in _NOT_NEGATIVE:
        if (value := values[name]) is not None and value < 0:
            errors.append(_error(f"{name} must not be negative, not {value:g}.", 12))
    for step, window in dict(getattr(conf, "SAGA_STEP_RETRY_WINDOWS", {})).items():
        if step not in Step.__members__ or not float(window) > 0:
            errors.append(
                _error(f"SAGA_STEP_RETRY_WINDOWS: {step}={window} (a step, positive).", 13)
            )
    deadline, lease = values["SAGA_STEP_DEADLINE_SECONDS"], values["SAGA_LEASE_SECONDS"]
    if deadline and lease and lease <= deadline:
        errors.append(
            _error(
                f"SAGA_LEASE_SECONDS ({lease:g}) must outlast a call"
                f" (SAGA_STEP_DEADLINE_SECONDS, {deadline:g}).",
                14,
                "Otherwise a second worker takes over a saga whose call is still in flight.",
            )
        )
    errors += _compensation_outlasts_a_restart(values)
    errors += _deadline_outlasts_the_windows(conf, values["SAGA_DEADLINE_SECONDS"])
    return errors


def _deadline_outlasts_the_windows(conf: Any, deadline: float | None) -> list[checks.Warning]:
    """A saga deadline within a step's retry window ends sagas a short outage would not
    have ended: allowed (tests want short ones), but said."""
    try:
        windows = [float(getattr(conf, "SAGA_STEP_RETRY_WINDOW_SECONDS", 0) or 0)]
        windows += [float(w) for w in dict(getattr(conf, "SAGA_STEP_RETRY_WINDOWS", {})).values()]
    except (TypeError, ValueError):
        return []  # reported by the checks of the windows themselves
    longest = max(windows)
    if deadline is None or deadline <= 0 or deadline > longest:
        return []
    return [
        checks.Warning(
            f"SAGA_DEADLINE_SECONDS ({deadline:g}) is not above the longest step retry"
            f" window ({longest:g} s): sagas end by their deadline before a step gives up.",
            id="sagas.W017",
        )
    ]


def _compensation_outlasts_a_restart(values: dict[str, float | None]) -> list[checks.Error]:
    window = values["SAGA_COMPENSATION_RETRY_WINDOW_SECONDS"]
    if window is not None and 0 < window < PARTICIPANT_RESTART_SECONDS:
        return [
            _error(
                f"SAGA_COMPENSATION_RETRY_WINDOW_SECONDS ({window:g}) must outlast a"
                f" participant's restart ({PARTICIPANT_RESTART_SECONDS:g} s).",
                15,
            )
        ]
    cap, base, cap_delay = (
        values["SAGA_MAX_COMPENSATION_ATTEMPTS"],
        values["SAGA_RETRY_BASE_SECONDS"],
        values["SAGA_RETRY_MAX_DELAY_SECONDS"],
    )
    if not cap or base is None or cap_delay is None:
        return []  # no cap: the window alone decides
    # The shortest time `cap` calls can span: every backoff at its jitter's minimum.
    least = sum(
        retry_delay(n, base=base, cap=cap_delay, rng=lambda: 0.0) for n in range(1, int(cap))
    )
    if least < PARTICIPANT_RESTART_SECONDS:
        return [
            _error(
                f"SAGA_MAX_COMPENSATION_ATTEMPTS ({cap:g}) may be spent in {least:g} s, less"
                f" than a participant's restart ({PARTICIPANT_RESTART_SECONDS:g} s).",
                16,
                "Raise it, or set it to 0 and let the window decide.",
            )
        ]
    return []


@checks.register()
def saga_definition(app_configs: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """The purchase saga's steps and the SAGA_* settings."""
    return check_steps(PURCHASE_STEPS) + check_budgets(settings)
