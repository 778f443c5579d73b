"""What the load buys: scenarios, products, and the body of each purchase."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

SCENARIOS = {
    "seed": "the seed's 1kpurchases.sh: purchases of two products, every one valid",
    "reject10": "the same load with one business rejection in ten (currency XXX, refused"
    " by the payment step: the order is cancelled and the stock released)",
    "cancel10": "the same load with one purchase in ten cancelled by its customer right"
    " after its 202 (POST .../cancel): it ends CANCELLED, or COMPLETED when the saga was"
    " faster than the cancel, with nothing left reserved, ordered or paid for it",
    "steady": "the seed's purchases at a fixed open-loop RATE per second (at most PURCHASES,"
    " at most DURATION seconds); without RATE, short steps of rising rate find the highest"
    " one sustained with POST->final p99 under the target",
}
# The statuses a purchase's saga ends in by itself (NEEDS_ATTENTION waits for a person).
ENDED = ("COMPLETED", "FAILED", "CANCELLED")
REJECTED_CURRENCY = "XXX"  # known to the purchase service, refused by the payment service
# The search's rates stop here: a bound on the purchases (and stock) a search may need.
MAX_SEARCH_RATE = 400.0


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
    rate: float = 0.0  # purchases/s to start; 0: as fast as `concurrency` allows (steady: search)
    duration: float = 120.0  # steady: seconds of sending at most (the whole search's)
    step_seconds: float = 10.0  # steady search: seconds of sending per rate tried
    p99_target: float = 1.0  # steady: the POST->final p99 (s) a sustained rate stays under
    one_at_a_time: int = 100  # after the load: purchases sent each after the last one's end
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

    @property
    def cancel_every(self) -> int:
        """Every n-th purchase is cancelled right after its 202 (0: none)."""
        return 10 if self.scenario == "cancel10" else 0

    @property
    def searching(self) -> bool:
        """Steady without a rate: find the highest rate sustained."""
        return self.scenario == "steady" and self.rate <= 0

    @property
    def load_purchases(self) -> int:
        """Purchases of the load phase, decided up front (a search decides step by step)."""
        if self.searching:
            return 0
        if self.scenario == "steady":
            return min(self.purchases, math.ceil(self.rate * self.duration))
        return self.purchases

    @property
    def most_purchases(self) -> int:
        """An upper bound on every purchase of the run (the stock to create)."""
        load = math.ceil(MAX_SEARCH_RATE * self.duration) if self.searching else self.load_purchases
        return load + self.one_at_a_time


@dataclass(frozen=True)
class PurchasePlan:
    index: int
    customer: int
    lines: tuple[tuple[int, int], ...]  # (product index, quantity)
    currency_code: str
    idempotency_key: str
    cancel_on_purpose: bool = False

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
    """The purchases of a run, drawn in order from one generator seeded by
    `options.seed`, so runs repeat: the load's first, then each later phase's."""

    options: Options
    run_id: str
    plans: list[PurchasePlan] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def build(cls, options: Options, run_id: str) -> Workload:
        """The run's generator, and the load phase's purchases drawn from it."""
        workload = cls(options, run_id, rng=random.Random(options.seed))
        workload.draw(options.load_purchases)
        return workload

    def draw(self, count: int) -> list[PurchasePlan]:
        """`count` more purchases (appended to `plans`), numbered after the last one."""
        options = self.options
        weights = zipf_weights(options.products, options.skew)
        lines = min(options.lines, options.products)
        drawn = []
        for i in range(len(self.plans), len(self.plans) + count):
            chosen: list[int] = []
            while len(chosen) < lines:  # weighted, without replacement
                pick = self.rng.choices(range(options.products), weights)[0]
                if pick not in chosen:
                    chosen.append(pick)
            rejected = options.reject_every and i % options.reject_every == options.reject_every - 1
            cancelled = (
                options.cancel_every and i % options.cancel_every == options.cancel_every - 1
            )
            drawn.append(
                PurchasePlan(
                    index=i,
                    customer=i % options.customers,
                    lines=tuple((p, options.quantity) for p in sorted(chosen)),
                    currency_code=REJECTED_CURRENCY if rejected else "VND",
                    idempotency_key=f"bench-{self.run_id}-{i}",
                    cancel_on_purpose=bool(cancelled),
                )
            )
        self.plans.extend(drawn)
        return drawn

    def inventory(self) -> int:
        """Units per product at the start: as given, or enough for every purchase."""
        if self.options.inventory is not None:
            return self.options.inventory
        return self.options.most_purchases * self.options.quantity
