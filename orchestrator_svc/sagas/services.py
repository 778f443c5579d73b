"""Writes of the saga orchestrator."""

from django.db import transaction

from common.events import PurchaseCreated
from orchestrator_svc.sagas.models import Saga


@transaction.atomic
def saga_start(*, event: PurchaseCreated) -> tuple[Saga, bool]:
    """Create the saga of a purchase once; a repeat answers the existing row."""
    return Saga.objects.get_or_create(
        purchase_id=event.purchase_id,
        defaults={"customer_id": event.customer_id, "payload": event.to_json()},
    )
