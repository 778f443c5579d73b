"""Settings of the orchestrator service: the shared ones plus what only it needs."""

from common.celery_conf import celery_settings
from common.events import Step
from common.settings import build, env


def _step_windows(spec: str) -> dict[str, float]:
    """ "CREATE_PAYMENT=600,CREATE_ORDER=120" -> {"CREATE_PAYMENT": 600.0, ...}."""
    windows = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, seconds = part.partition("=")
        windows[Step(name.strip()).value] = float(seconds)
    return windows


_RESUME_INTERVAL = float(env("SAGA_RESUME_INTERVAL_SECONDS", "5"))
# The consistency audit (sagas/audit.py) runs this often over the sagas that ended in
# the last SAGA_AUDIT_WINDOW_SECONDS: a window longer than the interval, so runs overlap.
_AUDIT_INTERVAL = float(env("SAGA_AUDIT_INTERVAL_SECONDS", "300"))

_SAGA = {
    # Deadline of every gRPC call a step makes.
    "SAGA_STEP_DEADLINE_SECONDS": float(env("SAGA_STEP_DEADLINE_SECONDS", "5")),
    # How long a forward step's call is retried after its first try before the step
    # fails and the saga compensates (a business refusal compensates at once). Per step:
    # SAGA_STEP_RETRY_WINDOWS="CREATE_PAYMENT=600,CREATE_ORDER=120" (Step names).
    "SAGA_STEP_RETRY_WINDOW_SECONDS": float(env("SAGA_STEP_RETRY_WINDOW_SECONDS", "300")),
    "SAGA_STEP_RETRY_WINDOWS": _step_windows(env("SAGA_STEP_RETRY_WINDOWS", "")),
    # How long a compensation is retried before the saga waits in NEEDS_ATTENTION for
    # a person: long, since giving up leaves the earlier steps' effects in place.
    "SAGA_COMPENSATION_RETRY_WINDOW_SECONDS": float(
        env("SAGA_COMPENSATION_RETRY_WINDOW_SECONDS", "86400")
    ),
    # Optional caps on the calls within a window (0: none; the window alone decides).
    "SAGA_MAX_ATTEMPTS": int(env("SAGA_MAX_ATTEMPTS", "0")),
    "SAGA_MAX_COMPENSATION_ATTEMPTS": int(env("SAGA_MAX_COMPENSATION_ATTEMPTS", "0")),
    # A participant's circuit (per worker process) opens after this many calls in a row
    # failed transiently; while open, sagas waiting on it are held without calling and
    # one probe call is let through every SAGA_CIRCUIT_OPEN_SECONDS; when one succeeds
    # the circuit closes and the held sagas are resumed at once.
    "SAGA_CIRCUIT_FAILURES": int(env("SAGA_CIRCUIT_FAILURES", "5")),
    "SAGA_CIRCUIT_OPEN_SECONDS": float(env("SAGA_CIRCUIT_OPEN_SECONDS", "5")),
    # Retry n waits about base * 2^(n-1) seconds (capped), jittered to 50-100 % of that.
    "SAGA_RETRY_BASE_SECONDS": float(env("SAGA_RETRY_BASE_SECONDS", "2")),
    "SAGA_RETRY_MAX_DELAY_SECONDS": float(env("SAGA_RETRY_MAX_DELAY_SECONDS", "30")),
    # How long a worker owns a saga without recording progress (renewed at each transition).
    "SAGA_LEASE_SECONDS": float(env("SAGA_LEASE_SECONDS", "15")),
    # A saga without a lease whose next run is overdue by this much is resumed.
    "SAGA_STALL_SECONDS": float(env("SAGA_STALL_SECONDS", "15")),
    # Sagas one task advances together: their calls in flight at once, their
    # transitions recorded in one transaction per wave (engine.py).
    "SAGA_BATCH_SIZE": int(env("SAGA_BATCH_SIZE", "100")),
    # Threads per worker process that make a wave's gRPC calls (they wait on the network).
    "SAGA_CALL_CONCURRENCY": int(env("SAGA_CALL_CONCURRENCY", "64")),
    "SAGA_AUDIT_WINDOW_SECONDS": float(env("SAGA_AUDIT_WINDOW_SECONDS", "900")),
}

globals().update(
    build(
        "orchestrator",
        apps=["common.outbox", "orchestrator_svc.sagas"],
        health_checks=["common.health.check_kafka", "common.health.check_celery_broker"],
        extra={
            **celery_settings(),
            **_SAGA,
            "CELERY_BEAT_SCHEDULE": {
                # Celery executes, orchestrator_db remembers: re-enqueue what stalled
                # (a lost task, a killed worker) long before the broker's
                # visibility timeout would re-deliver it.
                "resume-stalled-sagas": {
                    "task": "orchestrator_svc.sagas.tasks.resume_stalled_sagas",
                    "schedule": _RESUME_INTERVAL,
                    "options": {"expires": _RESUME_INTERVAL},
                },
                "audit-recent-sagas": {
                    "task": "orchestrator_svc.sagas.tasks.audit_recent_sagas",
                    "schedule": _AUDIT_INTERVAL,
                    "options": {"expires": _AUDIT_INTERVAL},
                },
                "prune-outbox": {
                    "task": "orchestrator_svc.sagas.tasks.prune_outbox",
                    "schedule": 3600.0,
                    "options": {"expires": 600.0},
                },
            },
        },
    )
)
