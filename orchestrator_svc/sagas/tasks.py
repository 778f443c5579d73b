"""Celery tasks of the orchestrator: thin adapters over services.

Celery is the executor, not the memory: every task passes a purchase id and
re-reads the saga, so running one twice, late or after a crash is safe
(`acks_late` holds). A lost task costs time only; `resume_stalled_sagas`
(Celery beat) hands stalled sagas over again.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

from celery import shared_task

from common.outbox.services import outbox_prune
from orchestrator_svc.sagas import services

logger = logging.getLogger(__name__)


def lease_owner() -> str:
    """A name for one task invocation: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@shared_task(acks_late=True, ignore_result=True)
def advance_saga(purchase_id: str) -> None:
    """Run the saga as far as it goes now; schedule its next run if a call must be retried.

    The steps run in this one invocation (no re-enqueue between them), so a purchase
    finishes in a few round trips. Retries are a new task with a countdown, enqueued
    after the transition that scheduled them committed.
    """
    result = services.saga_advance(purchase_id=purchase_id, owner=lease_owner())
    if result.retry_in is not None:
        advance_saga.apply_async((purchase_id,), countdown=result.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def resume_stalled_sagas() -> int:
    """Celery beat, every few seconds: hand over the sagas that stopped making progress."""
    return len(services.sagas_resume_stalled())


@shared_task(ignore_result=True)
def prune_outbox() -> int:
    """Celery beat, hourly: drop outbox rows published more than a week ago."""
    return outbox_prune()
