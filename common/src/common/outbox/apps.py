from django.apps import AppConfig


class OutboxConfig(AppConfig):
    """The outbox table, in the database of each service that publishes events."""

    name = "common.outbox"
    label = "outbox"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Transactional outbox"

    def ready(self) -> None:
        # The backlog gauges of every service with an outbox, computed at scrape time.
        from common.observability.metrics import register_scrape_collector
        from common.outbox.metrics import OutboxBacklogCollector

        register_scrape_collector(OutboxBacklogCollector())
