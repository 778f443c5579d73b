"""The purchase service's own settings: declared once here, with their defaults.

config/settings.py takes them from the environment (`config.from_environment()`); code
reads `config().max_lines`.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.conf import AppSettings, setting, upper_codes


@dataclass(frozen=True)
class PurchaseSettings:
    # POST /api/v1/purchases: at most this many distinct product lines, and at most this
    # many units of one product (after merging duplicate lines).
    max_lines: int = 50
    max_quantity: int = 1000
    # ISO 4217 codes a purchase may be paid in (KNOWN_CURRENCIES, comma-separated). XXX
    # ("no currency") is accepted here and refused by the payment service: tests drive a
    # payment rejection with it.
    known_currencies: tuple[str, ...] = setting(
        ("VND", "USD", "EUR", "GBP", "JPY", "XXX"), name="KNOWN_CURRENCIES", convert=upper_codes
    )
    # Deadline of ProductService.CheckProducts through the gRPC edge.
    product_check_timeout: float = setting(2.0, name="PURCHASE_PRODUCT_CHECK_TIMEOUT_SECONDS")
    # GET /api/v1/purchases/{id}/events (Server-Sent Events), see
    # docs/adr/0007-purchase-api-and-sse.md. Each open stream holds one gunicorn thread,
    # so a process serves at most sse_max_streams of them at once and keeps its other
    # threads for the rest of the API.
    sse_max_streams: int = 4
    sse_max_seconds: float = 300.0
    sse_heartbeat_seconds: float = 15.0
    # How often a stream re-reads the database: while the LISTEN connection is up only as
    # a safety net, and as the only wake-up when it is down.
    sse_safety_poll_seconds: float = 2.0
    sse_fallback_poll_seconds: float = 0.2


config = AppSettings(PurchaseSettings, prefix="PURCHASE_")
