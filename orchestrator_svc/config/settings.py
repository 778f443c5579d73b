"""Settings of the orchestrator service: the shared ones plus what only it needs."""

from common.celery_conf import celery_settings
from common.settings import build

globals().update(
    build(
        "orchestrator",
        apps=["common.outbox", "orchestrator_svc.sagas"],
        health_checks=["common.health.check_kafka", "common.health.check_celery_broker"],
        extra=celery_settings(),
    )
)
