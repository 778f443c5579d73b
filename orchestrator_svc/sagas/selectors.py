"""Reads of the saga orchestrator (admin and the staff API)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from orchestrator_svc.sagas.models import Saga, SagaStepLog
from orchestrator_svc.sagas.steps import PURCHASE_STEPS


def saga_list(*, state: str | None = None, customer_id: int | None = None) -> QuerySet[Saga]:
    """Sagas, newest first, optionally of one state or one customer."""
    sagas = Saga.objects.order_by("-created_at")
    if state:
        sagas = sagas.filter(state=state)
    if customer_id is not None:
        sagas = sagas.filter(customer_id=customer_id)
    return sagas


def saga_get(*, purchase_id: str) -> Saga | None:
    """The saga of a purchase, or None (also for an id that is not a UUID)."""
    try:
        key = uuid.UUID(str(purchase_id))
    except ValueError:
        return None
    return Saga.objects.filter(pk=key).first()


def saga_step_logs(*, saga: Saga) -> QuerySet[SagaStepLog]:
    """Every transition of a saga, in the order it happened."""
    return saga.step_logs.order_by("id")


def saga_current_step(saga: Saga) -> str:
    """The name of the step the saga is at (or ended at)."""
    index = min(saga.step_index, len(PURCHASE_STEPS) - 1)
    return PURCHASE_STEPS[index].step.value
