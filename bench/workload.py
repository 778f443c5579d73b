"""What the load buys: scenarios, products, and the body of each purchase."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

SCENARIOS = {
    "seed": "the seed's 1kpurchases.sh: purchases of two products, every one valid",
    "reject10": "the same load with one business rejection in ten (currency XXX, refused"
    " by the payment step: the order is cancelled and the stock released)",
}
REJECTED_CURRENCY = "XXX"  # known to the purchase service, refused by the payment service


@dataclass(frozen=True)
class Options:
    scenario: str = "seed"
    purchases: int = 1000
    concurrency: int = 1000
    products: int = 2
    lines: int = 2
    quantity: int = 1
    skew: float = 0.0
    customers: int = 10
    inventory: int | None = None  # per product; None: enough for every purchase
    rate: float = 0.0  # purchases/s to start; 0: as fast as `concurrency` allows
    drain_timeout: float = 300.0
    poll_interval: float = 1.0
    seed: int = 1
    out_dir: str = "bench/results"
    chart: bool = True
    profile: str | None = None  # a process label, or "auto" for the hottest one

    @property
    def reject_every(self) -> int:
        """Every n-th purchase is refused on purpose (0: none)."""
        return 10 if self.scenario == "reject10" else 0


@dataclass(frozen=True)
class PurchasePlan:
    index: int
    customer: int
    lines: tuple[tuple[int, int], ...]  # (product index, quantity)
    currency_code: str
    idempotency_key: str

    def body(self, product_ids: list[int]) -> dict[str, Any]:
        return {
            "order_items": [{"product_id": product_ids[p], "quantity": q} for p, q in self.lines],
            "payment": {"currency_code": self.currency_code},
        }

    @property
    def rejected_on_purpose(self) -> bool:
        return self.currency_code == REJECTED_CURRENCY


def zipf_weights(products: int, skew: float) -> list[float]:
    """Demand of product k (1-based) proportional to 1/k^skew (0: uniform)."""
    weights = [1.0 / (k**skew) for k in range(1, products + 1)]
    total = sum(weights)
    return [w / total for w in weights]


@dataclass
class Workload:
    options: Options
    plans: list[PurchasePlan] = field(default_factory=list)

    @classmethod
    def build(cls, options: Options, run_id: str) -> Workload:
        """Every purchase decided up front, from `options.seed`, so runs repeat."""
        rng = random.Random(options.seed)
        weights = zipf_weights(options.products, options.skew)
        lines = min(options.lines, options.products)
        plans = []
        for i in range(options.purchases):
            chosen: list[int] = []
            while len(chosen) < lines:  # weighted, without replacement
                pick = rng.choices(range(options.products), weights)[0]
                if pick not in chosen:
                    chosen.append(pick)
            rejected = options.reject_every and i % options.reject_every == options.reject_every - 1
            plans.append(
                PurchasePlan(
                    index=i,
                    customer=i % options.customers,
                    lines=tuple((p, options.quantity) for p in sorted(chosen)),
                    currency_code=REJECTED_CURRENCY if rejected else "VND",
                    idempotency_key=f"bench-{run_id}-{i}",
                )
            )
        return cls(options, plans)

    def inventory(self) -> int:
        """Units per product at the start: as given, or enough for every purchase."""
        if self.options.inventory is not None:
            return self.options.inventory
        return self.options.purchases * self.options.quantity
