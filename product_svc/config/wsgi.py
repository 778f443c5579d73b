"""WSGI entry point for gunicorn: `gunicorn product_svc.config.wsgi:application`."""

from common.manage import wsgi_application

application = wsgi_application("product")

# A process that serves product reads first makes sure the cuckoo filter of product
# ids exists (docs/adr/0005-inventory-reservations.md).
from product_svc.catalog.startup import ensure_product_filter  # noqa: E402

ensure_product_filter()
