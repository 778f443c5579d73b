"""Writes of the purchase service."""

from django.db import transaction

from common.events import PurchaseResult
from purchase_svc.purchases.models import PurchaseStepEvent


@transaction.atomic
def purchase_step_record(*, message_id: str, result: PurchaseResult) -> bool:
    """Store one step change once; answer whether it was new."""
    _, created = PurchaseStepEvent.objects.get_or_create(
        message_id=message_id,
        defaults={
            "purchase_id": result.purchase_id,
            "step": result.step.value,
            "status": result.status.value,
            "error": result.error,
        },
    )
    return created
