"""Settings of the order service: the shared ones plus what only it needs."""

from common.settings import build, env

globals().update(
    build(
        "order",
        apps=["order_svc.orders"],
        health_checks=["common.health.check_redis_cluster"],
        extra={
            "GRPC_SERVICERS": ["order_svc.orders.grpc.register"],
            # Business rules of CreateOrder (docs/business-rules.md): more distinct
            # products than ORDER_MAX_LINES, or more units of one product than
            # ORDER_MAX_QUANTITY_PER_LINE, is refused with FAILED_PRECONDITION. Both stay
            # below the purchase service's own limits (PURCHASE_MAX_LINES 50,
            # PURCHASE_MAX_QUANTITY 1000), so a purchase can reach the order step and
            # fail there on purpose.
            "ORDER_MAX_LINES": int(env("ORDER_MAX_LINES", "20")),
            "ORDER_MAX_QUANTITY_PER_LINE": int(env("ORDER_MAX_QUANTITY_PER_LINE", "100")),
            # The read-through cache of single orders (common.cache); tests use their own.
            "ORDER_CACHE_NAMESPACE": env("ORDER_CACHE_NAMESPACE", "order"),
        },
    )
)
