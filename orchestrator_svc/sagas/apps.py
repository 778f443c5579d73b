from django.apps import AppConfig


class SagasConfig(AppConfig):
    name = "orchestrator_svc.sagas"
    label = "sagas"
