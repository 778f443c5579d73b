from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q


class OutboxMessage(models.Model):
    """One event waiting for (or past) publication to Kafka.

    `id` orders publication and, as the `message-id` header, lets consumers
    recognise a message the relay sent twice. The partial index keeps the relay's
    scan of unpublished rows cheap however many published rows wait for pruning.
    """

    id = models.BigAutoField(primary_key=True)
    topic = models.CharField(max_length=249)  # Kafka's limit for a topic name
    key = models.CharField(max_length=255)
    # DjangoJSONEncoder: UUIDs, Decimals and datetimes are stored as strings.
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    headers = models.JSONField(encoder=DjangoJSONEncoder, default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "outbox_message"
        indexes = [
            models.Index(
                fields=["id"],
                name="outbox_message_unpublished",
                condition=Q(published_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"outbox #{self.id} {self.topic}/{self.key}"
