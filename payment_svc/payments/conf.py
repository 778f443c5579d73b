"""The payment service's own settings, typed, read at call time (tests override them).

Defaults here match config/settings.py, so code outside the service's settings (the
type checker's, say) still gets a working value.
"""

from __future__ import annotations

from django.conf import settings

DEFAULT_ACCEPTED_CURRENCIES = ("VND", "USD", "EUR")


def accepted_currencies() -> frozenset[str]:
    """ISO 4217 codes this service takes payments in (ACCEPTED_CURRENCIES)."""
    codes = getattr(settings, "ACCEPTED_CURRENCIES", DEFAULT_ACCEPTED_CURRENCIES)
    return frozenset(str(code).upper() for code in codes)


def max_amount() -> int:
    """The most one customer may be charged in one payment, minor units (PAYMENT_MAX_AMOUNT)."""
    return int(getattr(settings, "PAYMENT_MAX_AMOUNT", 10_000_000))


def cache_namespace() -> str:
    """Namespace of the read-through payment cache (PAYMENT_CACHE_NAMESPACE)."""
    return str(getattr(settings, "PAYMENT_CACHE_NAMESPACE", "payment"))
