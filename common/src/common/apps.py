from django.apps import AppConfig
from django.conf import settings


class CommonConfig(AppConfig):
    """Makes common's management commands (grpcserve, kafka_consume, ...) available,
    and starts tracing in every process of a service (gunicorn worker, gRPC server,
    relay, consumer, Celery worker) before it serves anything."""

    name = "common"
    label = "common"

    def ready(self) -> None:
        from common.observability.tracing import configure_tracing

        configure_tracing(getattr(settings, "SERVICE_NAME", "unknown"))
