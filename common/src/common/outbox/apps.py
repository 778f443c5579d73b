from django.apps import AppConfig


class OutboxConfig(AppConfig):
    """The outbox table, in the database of each service that publishes events."""

    name = "common.outbox"
    label = "outbox"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Transactional outbox"
