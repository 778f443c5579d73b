"""The settings mypy's Django plugin loads: one project holding every service's apps.

Each service is its own Django project at run time; the type checker needs one
settings module that knows every model, so it gets this one. The names below are our
own settings, which `common.settings.build()` sets at run time, declared for mypy.
"""

from common.celery_conf import celery_settings
from common.settings import build

globals().update(
    build(
        "orchestrator",
        apps=[
            "common.outbox",
            "account_svc.accounts",
            "product_svc.catalog",
            "order_svc.orders",
            "payment_svc.payments",
            "purchase_svc.purchases",
            "orchestrator_svc.sagas",
        ],
        extra=celery_settings(),
    )
)

SERVICE_NAME: str
HEALTH_CHECKS: list[str]
KAFKA_BOOTSTRAP_SERVERS: str
REDIS_CLUSTER_NODES: str
GRPC_EDGE_TARGET: str
GRPC_PORT: int
GRPC_SERVICERS: list[str]
GRPC_HEALTH_NAMES: list[str]
