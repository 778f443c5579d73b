"""Settings of the product service: the shared ones plus what only it needs."""

from common.settings import build

globals().update(
    build(
        "product",
        apps=["product_svc.catalog"],
        health_checks=["common.health.check_redis_cluster"],
    )
)
