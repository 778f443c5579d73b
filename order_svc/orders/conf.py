"""The order service's own settings, typed, read at call time (tests override them).

Defaults here match config/settings.py, so code outside the service's settings (the
type checker's, say) still gets a working value.
"""

from __future__ import annotations

from django.conf import settings


def max_lines() -> int:
    """The most distinct products one order may have (ORDER_MAX_LINES)."""
    return int(getattr(settings, "ORDER_MAX_LINES", 20))


def max_quantity_per_line() -> int:
    """The most units of one product one order may have (ORDER_MAX_QUANTITY_PER_LINE)."""
    return int(getattr(settings, "ORDER_MAX_QUANTITY_PER_LINE", 100))


def cache_namespace() -> str:
    """Namespace of the read-through order cache (ORDER_CACHE_NAMESPACE)."""
    return str(getattr(settings, "ORDER_CACHE_NAMESPACE", "order"))
