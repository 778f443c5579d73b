"""What a product service process does once before it serves (gunicorn worker, gRPC server)."""

from __future__ import annotations

import logging

from django.db import connections

from product_svc.catalog import services

logger = logging.getLogger(__name__)


def ensure_product_filter() -> None:
    """Rebuild the product-id filter if it is missing or (nearly) full; never raises.

    A failure here must not keep the process from serving: without a trusted filter,
    reads fall through to the database, slower but right.
    """
    try:
        services.product_filter_ensure()
    except Exception:  # a start-up check must not stop the process from serving
        logger.exception("checking the product filter at startup failed")
    finally:
        # The check ran outside any request: do not keep its connection idle forever.
        connections.close_all()
