from django.db import models


class SagaState(models.TextChoices):
    STARTED = "STARTED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"


class Saga(models.Model):
    """One purchase saga; orchestrator_db is its source of truth.

    Keyed by the purchase id, so a redelivered PurchaseCreated finds the same row.
    """

    purchase_id = models.UUIDField(primary_key=True)
    customer_id = models.BigIntegerField()
    payload = models.JSONField(help_text="The PurchaseCreated event that started the saga.")
    state = models.CharField(max_length=20, choices=SagaState.choices, default=SagaState.STARTED)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "saga"
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"saga {self.purchase_id} ({self.state})"
