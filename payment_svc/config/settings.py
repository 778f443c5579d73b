"""Settings of the payment service: the shared ones plus what only it needs."""

from common.settings import build

globals().update(
    build(
        "payment",
        apps=["payment_svc.payments"],
        health_checks=["common.health.check_redis_cluster"],
    )
)
