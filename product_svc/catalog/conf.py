"""The product service's own settings: declared once here, with their defaults.

config/settings.py takes them from the environment (`config.from_environment()`); code
reads `config().cache_namespace`.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.conf import AppSettings


@dataclass(frozen=True)
class ProductSettings:
    # The read-through cache of single products and the cuckoo filter of product ids
    # (common.cache). Tests give themselves other names so they never touch the running
    # service's entries.
    cache_namespace: str = "product"
    filter_name: str = "product-ids"


config = AppSettings(ProductSettings, prefix="PRODUCT_")
