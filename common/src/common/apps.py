from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Makes common's management commands (grpcserve, kafka_consume, ...) available."""

    name = "common"
    label = "common"
