"""Settings of the order service: the shared ones plus what only it needs."""

from common.settings import build

globals().update(
    build(
        "order",
        apps=["order_svc.orders"],
        health_checks=["common.health.check_redis_cluster"],
    )
)
