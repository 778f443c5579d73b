"""Settings of the order service: the shared ones plus what only it needs."""

from common.settings import build
from order_svc.orders.conf import config

globals().update(
    build(
        "order",
        apps=["order_svc.orders"],
        health_checks=["common.health.check_redis_cluster"],
        extra={
            "GRPC_SERVICERS": ["order_svc.orders.grpc.register"],
            # ORDER_*: the business rules and the cache, declared in orders/conf.py.
            **config.from_environment(),
        },
    )
)
