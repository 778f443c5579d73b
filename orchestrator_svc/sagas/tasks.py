"""Celery tasks of the orchestrator: thin adapters over services.

Celery is the executor, not the memory: every task passes purchase ids and the
engine re-reads each saga, so running one twice, late or after a crash is safe
(`acks_late` holds). A lost task costs time only; `resume_stalled_sagas`
(Celery beat) hands stalled sagas over again.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import uuid
from collections import defaultdict
from datetime import timedelta

from celery import Task, shared_task
from celery.signals import worker_ready
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone

from common.outbox.services import outbox_prune
from orchestrator_svc.sagas import audit, services
from orchestrator_svc.sagas.conf import config
from orchestrator_svc.sagas.machine import retry_delay

logger = logging.getLogger(__name__)

DATABASE_RETRIES = 30  # with up to 8 s between them: a few minutes of database outage


def lease_owner() -> str:
    """A name for one task invocation: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=DATABASE_RETRIES)
def advance_sagas(self: Task, purchase_ids: list[str], owner: str = "") -> None:
    """Run a batch of sagas as far as they go now, together (engine.sagas_advance),
    filled up to SAGA_BATCH_SIZE with other due sagas; schedule the next run of those
    whose call must be retried.

    The steps run in this one invocation (no re-enqueue between them), so a purchase
    finishes in a few round trips. Retries are new tasks with a countdown, enqueued
    after the transition that scheduled them committed; sagas due in the same second
    share one.

    A database error (PostgreSQL restarting) cuts the run short with the sagas' leases
    still held: the task is retried under the same `owner`, which takes its own leases
    back at once instead of leaving the sagas until the leases expire.
    """
    owner = owner or lease_owner()
    try:
        results = services.sagas_advance(
            purchase_ids=purchase_ids, owner=owner, fill_to=config().batch_size
        )
    except (OperationalError, InterfaceError) as exc:
        logger.warning("advance_sagas: database unavailable (%s); retrying as %s", exc, owner)
        retry_in = retry_delay(self.request.retries + 1, base=2.0, cap=8.0)
        retry = self.retry(args=(purchase_ids,), kwargs={"owner": owner}, countdown=retry_in)
        raise retry from exc
    due: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for purchase_id, result in results.items():
        if result.retry_in is not None:
            due[math.ceil(result.retry_in)].append((result.retry_in, purchase_id))
    size = config().batch_size
    for retries in due.values():
        countdown = max(retry_in for retry_in, _ in retries)  # every one of them is due then
        for start in range(0, len(retries), size):  # many due at once: several tasks
            chunk = [pid for _, pid in retries[start : start + size]]
            advance_sagas.apply_async((chunk,), countdown=countdown)


@shared_task(acks_late=True, ignore_result=True)
def advance_saga(purchase_id: str) -> None:
    """One saga: `advance_sagas` of one (kept for tasks queued before batches)."""
    advance_sagas([purchase_id])


@worker_ready.connect
def release_leases_of_dead_workers(**_: object) -> None:
    """A worker starting on this host (supervisord restarting a killed one) frees the
    leases its dead predecessors held: their sagas go on now, not when the leases
    expire. Only this host's: a process id means nothing on another machine."""
    try:
        services.sagas_release_dead_leases(host=socket.gethostname(), alive=_pid_alive)
    except DatabaseError:
        logger.warning("could not release dead workers' leases; they expire", exc_info=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


@shared_task(acks_late=True, ignore_result=True)
def resume_stalled_sagas() -> int:
    """Celery beat, every few seconds: hand over the sagas that stopped making progress."""
    return len(services.sagas_resume_stalled())


@shared_task(ignore_result=True)
def prune_outbox() -> int:
    """Celery beat, hourly: drop outbox rows published more than a week ago."""
    return outbox_prune()


@shared_task(ignore_result=True)
def audit_recent_sagas() -> int:
    """Celery beat, every SAGA_AUDIT_INTERVAL_SECONDS: the consistency audit (audit.py)
    over the sagas that ended in the last SAGA_AUDIT_WINDOW_SECONDS (longer than the
    interval, so a run that is late or lost leaves no gap); answers the discrepancies."""
    since = timezone.now() - timedelta(seconds=config().audit_window_seconds)
    return audit.sagas_audit(since=since).discrepancies
