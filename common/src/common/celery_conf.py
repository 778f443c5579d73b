"""Celery settings (namespace CELERY_) for a service that runs tasks.

JSON only, bounded time limits, late acks with re-delivery on a lost worker: tasks
must be idempotent (they pass ids and re-read state), so running one twice is safe.
"""

from __future__ import annotations

from typing import Any

from common.settings import env, env_bool
from common.topology import INFRA


def celery_settings() -> dict[str, Any]:
    return {
        "CELERY_BROKER_URL": INFRA.celery_broker_url,
        "CELERY_RESULT_BACKEND": None,
        "CELERY_TASK_IGNORE_RESULT": True,
        "CELERY_ACCEPT_CONTENT": ["json"],
        "CELERY_TASK_SERIALIZER": "json",
        "CELERY_TASK_ACKS_LATE": True,
        "CELERY_TASK_REJECT_ON_WORKER_LOST": True,
        "CELERY_WORKER_PREFETCH_MULTIPLIER": int(env("CELERY_PREFETCH", "4")),
        "CELERY_TASK_TIME_LIMIT": int(env("CELERY_TASK_TIME_LIMIT", "60")),
        "CELERY_TASK_SOFT_TIME_LIMIT": int(env("CELERY_TASK_SOFT_TIME_LIMIT", "45")),
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        # Redis visibility timeout: an unacked task is re-delivered after this long.
        "CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": 300},
        "CELERY_WORKER_HIJACK_ROOT_LOGGER": False,
        # Celery's Django fixup closes every database connection before and after each
        # task unless this is set: a new PostgreSQL connection (and backend process) per
        # task, 5-6 ms of the worker's time and more of PostgreSQL's. With it, the fixup
        # recycles the connections only every this many tasks; `connection_hygiene` gives
        # tasks what Django gives requests instead (CONN_MAX_AGE, health checks).
        "CELERY_DB_REUSE_MAX": int(env("CELERY_DB_REUSE_MAX", "1000")),
        # Task events, so `celery events` and Flower see what runs (docs/operations.md):
        # sent (by whoever enqueues), received, started, succeeded/failed/retried (by the
        # worker): four small pub/sub messages on the broker per task, and a task
        # advances a whole wave of sagas. CELERY_TASK_EVENTS=0 turns them off.
        "CELERY_WORKER_SEND_TASK_EVENTS": env_bool("CELERY_TASK_EVENTS", True),
        "CELERY_TASK_SEND_SENT_EVENT": env_bool("CELERY_TASK_EVENTS", True),
    }


def connection_hygiene() -> None:
    """Before and after each task, Django's `close_old_connections`, as around each HTTP
    request: a connection past CONN_MAX_AGE, broken (a database restart) or left in a
    bad state is closed, so the next query opens a fresh one instead of failing."""
    from celery import signals
    from django.db import close_old_connections

    def close_old(**_: Any) -> None:
        close_old_connections()

    signals.task_prerun.connect(close_old, weak=False, dispatch_uid="close_old_connections.pre")
    signals.task_postrun.connect(close_old, weak=False, dispatch_uid="close_old_connections.post")
