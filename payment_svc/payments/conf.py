"""The payment service's own settings: declared once here, with their defaults.

config/settings.py takes them from the environment (`config.from_environment()`); code
reads `config().max_amount`.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.conf import AppSettings, setting, upper_codes


@dataclass(frozen=True)
class PaymentSettings:
    # Business rules of CreatePayment (docs/business-rules.md): a currency not in
    # ACCEPTED_CURRENCIES (ISO 4217, comma-separated), or an amount above
    # PAYMENT_MAX_AMOUNT (the most one customer may be charged in one payment, minor
    # units), is refused with FAILED_PRECONDITION.
    accepted_currencies: frozenset[str] = setting(
        frozenset({"VND", "USD", "EUR"}),
        name="ACCEPTED_CURRENCIES",
        convert=lambda value: frozenset(upper_codes(value)),
    )
    max_amount: int = 10_000_000
    # The read-through cache of single payments (common.cache); tests use their own.
    cache_namespace: str = "payment"


config = AppSettings(PaymentSettings, prefix="PAYMENT_")
