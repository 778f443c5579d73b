"""Settings of the payment service: the shared ones plus what only it needs."""

from common.settings import build, env

globals().update(
    build(
        "payment",
        apps=["payment_svc.payments"],
        health_checks=["common.health.check_redis_cluster"],
        extra={
            "GRPC_SERVICERS": ["payment_svc.payments.grpc.register"],
            # Business rules of CreatePayment (docs/business-rules.md): a currency not
            # in ACCEPTED_CURRENCIES, or an amount above PAYMENT_MAX_AMOUNT (the most
            # one customer may be charged in one payment, minor units), is refused
            # with FAILED_PRECONDITION.
            "ACCEPTED_CURRENCIES": [
                code.strip().upper()
                for code in env("ACCEPTED_CURRENCIES", "VND,USD,EUR").split(",")
                if code.strip()
            ],
            "PAYMENT_MAX_AMOUNT": int(env("PAYMENT_MAX_AMOUNT", "10000000")),
            # The read-through cache of single payments (common.cache); tests use their own.
            "PAYMENT_CACHE_NAMESPACE": env("PAYMENT_CACHE_NAMESPACE", "payment"),
        },
    )
)
