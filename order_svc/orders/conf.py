"""The order service's own settings: declared once here, with their defaults.

config/settings.py takes them from the environment (`config.from_environment()`); code
reads `config().max_lines`.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.conf import AppSettings


@dataclass(frozen=True)
class OrderSettings:
    # Business rules of CreateOrder (docs/business-rules.md): more distinct products
    # than ORDER_MAX_LINES, or more units of one product than ORDER_MAX_QUANTITY_PER_LINE,
    # is refused with FAILED_PRECONDITION. Both stay below the purchase service's own
    # limits (PURCHASE_MAX_LINES 50, PURCHASE_MAX_QUANTITY 1000), so a purchase can reach
    # the order step and fail there on purpose.
    max_lines: int = 20
    max_quantity_per_line: int = 100
    # The read-through cache of single orders (common.cache); tests use their own.
    cache_namespace: str = "order"


config = AppSettings(OrderSettings, prefix="ORDER_")
