"""Settings of the purchase service: the shared ones plus what only it needs."""

from common.settings import build
from purchase_svc.purchases.conf import config

globals().update(
    build(
        "purchase",
        apps=["common.outbox", "purchase_svc.purchases"],
        health_checks=["common.health.check_redis_cluster", "common.health.check_kafka"],
        extra={
            # PURCHASE_*, KNOWN_CURRENCIES: limits, currencies, deadlines and the event
            # streams, declared in purchases/conf.py.
            **config.from_environment(),
        },
    )
)
