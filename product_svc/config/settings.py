"""Settings of the product service: the shared ones plus what only it needs."""

from common.settings import build, env

globals().update(
    build(
        "product",
        apps=["product_svc.catalog"],
        health_checks=["common.health.check_redis_cluster"],
        extra={
            "GRPC_SERVICERS": ["product_svc.catalog.grpc.register"],
            # The read-through cache of single products and the cuckoo filter of
            # product ids (common.cache). Tests give themselves other names so they
            # never touch the running service's entries.
            "PRODUCT_CACHE_NAMESPACE": env("PRODUCT_CACHE_NAMESPACE", "product"),
            "PRODUCT_FILTER_NAME": env("PRODUCT_FILTER_NAME", "product-ids"),
        },
    )
)
