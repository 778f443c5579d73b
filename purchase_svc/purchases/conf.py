"""The purchase service's own settings, typed.

Their values and environment variables live in purchase_svc/config/settings.py. Read
once and kept (a POST asks for them several times), and read again after a test
overrides a setting (Django's `setting_changed` signal).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed


def _setting(name: str) -> Any:
    return getattr(settings, name)


@dataclass(frozen=True)
class PurchaseConfig:
    max_lines: int
    max_quantity: int
    known_currencies: tuple[str, ...]
    product_check_timeout: float
    sse_max_streams: int
    sse_max_seconds: float
    sse_heartbeat_seconds: float
    sse_safety_poll_seconds: float
    sse_fallback_poll_seconds: float


@functools.cache
def config() -> PurchaseConfig:
    return PurchaseConfig(
        max_lines=int(_setting("PURCHASE_MAX_LINES")),
        max_quantity=int(_setting("PURCHASE_MAX_QUANTITY")),
        known_currencies=tuple(_setting("KNOWN_CURRENCIES")),
        product_check_timeout=float(_setting("PURCHASE_PRODUCT_CHECK_TIMEOUT_SECONDS")),
        sse_max_streams=int(_setting("PURCHASE_SSE_MAX_STREAMS")),
        sse_max_seconds=float(_setting("PURCHASE_SSE_MAX_SECONDS")),
        sse_heartbeat_seconds=float(_setting("PURCHASE_SSE_HEARTBEAT_SECONDS")),
        sse_safety_poll_seconds=float(_setting("PURCHASE_SSE_SAFETY_POLL_SECONDS")),
        sse_fallback_poll_seconds=float(_setting("PURCHASE_SSE_FALLBACK_POLL_SECONDS")),
    )


def _forget(**_: Any) -> None:
    config.cache_clear()


setting_changed.connect(_forget, dispatch_uid="purchase_svc.purchases.conf")
