"""Settings of the payment service: the shared ones plus what only it needs."""

from common.settings import build
from payment_svc.payments.conf import config

globals().update(
    build(
        "payment",
        apps=["payment_svc.payments"],
        health_checks=["common.health.check_redis_cluster"],
        extra={
            "GRPC_SERVICERS": ["payment_svc.payments.grpc.register"],
            # ACCEPTED_CURRENCIES, PAYMENT_*: the business rules and the cache, declared
            # in payments/conf.py.
            **config.from_environment(),
        },
    )
)
