"""Settings of the product service: the shared ones plus what only it needs."""

from common.settings import build
from product_svc.catalog.conf import config

globals().update(
    build(
        "product",
        apps=["product_svc.catalog"],
        health_checks=["common.health.check_redis_cluster"],
        extra={
            "GRPC_SERVICERS": ["product_svc.catalog.grpc.register"],
            # PRODUCT_*: the cache and the filter, declared in catalog/conf.py.
            **config.from_environment(),
        },
    )
)
