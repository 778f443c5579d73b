from django.apps import AppConfig


class SagasConfig(AppConfig):
    name = "orchestrator_svc.sagas"
    label = "sagas"

    def ready(self) -> None:
        from orchestrator_svc.sagas import checks  # noqa: F401  (registers the system checks)
