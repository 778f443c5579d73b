from orchestrator_svc.config.celery import app

__all__ = ["app"]
