"""Settings of the orchestrator service: the shared ones plus what only it needs."""

from common.celery_conf import celery_settings
from common.settings import build
from orchestrator_svc.sagas.conf import config

# SAGA_*: budgets, leases, batches and the audit, declared in sagas/conf.py.
_SAGA = config.from_environment()
_RESUME_INTERVAL = _SAGA["SAGA_RESUME_INTERVAL_SECONDS"]
_AUDIT_INTERVAL = _SAGA["SAGA_AUDIT_INTERVAL_SECONDS"]

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
