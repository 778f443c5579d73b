"""Settings of the purchase service: the shared ones plus what only it needs."""

from common.settings import build

globals().update(
    build(
        "purchase",
        apps=["common.outbox", "purchase_svc.purchases"],
        health_checks=["common.health.check_redis_cluster", "common.health.check_kafka"],
    )
)
