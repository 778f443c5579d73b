from django.db import models


class PurchaseStepEvent(models.Model):
    """One step change of a purchase's saga, as the orchestrator published it.

    `message_id` is the orchestrator's outbox id: a redelivered message is stored once.
    """

    message_id = models.CharField(max_length=64, unique=True)
    purchase_id = models.UUIDField(db_index=True)
    step = models.CharField(max_length=32)
    status = models.CharField(max_length=32)
    error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "purchase_step_event"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.purchase_id} {self.step} {self.status}"
