"""The orchestrator's Celery app: `celery -A orchestrator_svc.config worker`."""

from celery import Celery

from common.celery_conf import connection_hygiene
from common.manage import use_settings

use_settings("orchestrator")

app = Celery("orchestrator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
connection_hygiene()
