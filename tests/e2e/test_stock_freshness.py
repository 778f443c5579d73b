"""Read-your-writes for stock (issue 17): once a purchase reads as COMPLETED, a read of
its product through the edge shows the stock after it, from any product process.

The reservation runs in the product gRPC process; the product HTTP workers keep the
product in their in-process cache level. Each round warms those entries first (a few
reads, so both workers are likely to hold the old stock), buys one unit, waits for the
purchase to read as final, and reads the product once, at once. Without broadcast
invalidations most of these reads answered the old stock (docs/adr/0004-cache-layer.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import FINAL, FINAL_WITHIN_SECONDS, Customer, edge, purchase

ROUNDS = 200
WARM_READS = 4


def product_inventory(product_id: int) -> int:
    response = edge("GET", f"/api/v1/products/{product_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["inventory"])


def wait_final_quickly(customer: Customer, purchase_id: str) -> dict[str, Any]:
    """The purchase as soon as it reads as final: polled often, so the read that
    follows comes right after the moment a customer could first see it."""
    deadline = time.monotonic() + FINAL_WITHIN_SECONDS
    while True:
        response = edge("GET", f"/api/v1/purchases/{purchase_id}", token=customer.token)
        if response.status_code == 200 and response.json()["status"] in FINAL:
            return dict(response.json())
        assert response.status_code in (200, 502, 503, 504), response.text
        assert time.monotonic() < deadline, f"purchase {purchase_id} still not final"
        time.sleep(0.01)


def test_a_completed_purchase_is_read_with_its_stock_taken_two_hundred_times_in_a_row(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    # Given a product with enough stock for every round
    product_id = make_product(inventory=ROUNDS + 10)
    expected = ROUNDS + 10
    stale: list[tuple[int, int, int]] = []  # (round, expected, answered)

    for round_no in range(ROUNDS):
        # the product sits in the HTTP workers' local levels, with the current stock
        for _ in range(WARM_READS):
            product_inventory(product_id)
        # when a customer buys one unit and sees the purchase COMPLETED
        purchase_id = purchase(customer, [(product_id, 1)])
        assert wait_final_quickly(customer, purchase_id)["status"] == "COMPLETED"
        expected -= 1
        # then the very next read of the product shows the unit gone
        answered = product_inventory(product_id)
        if answered != expected:
            stale.append((round_no, expected, answered))

    assert stale == [], f"{len(stale)} stale reads of {ROUNDS}: {stale[:10]}"
