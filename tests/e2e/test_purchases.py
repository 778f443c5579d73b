"""Purchases through the edge: rejections that leave no trace, a race for the last
units, and what a customer may see of another's."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import (
    Customer,
    count_by_status,
    edge,
    inventory_of,
    purchase,
    read_only,
    register_many,
    steps_of,
    wait_final,
)


def test_more_units_than_in_stock_fail_and_leave_every_inventory_as_before(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    # Given two products, one with enough stock and one with too little
    plenty, scarce = make_product(inventory=10), make_product(inventory=3)

    # when a purchase asks for 2 of the first and 4 of the second
    purchase_id = purchase(customer, [(plenty, 2), (scarce, 4)])
    final = wait_final(customer, purchase_id)

    # then it fails at the first step, and no unit of either product was taken
    assert final["status"] == "FAILED"
    assert ("UPDATE_PRODUCT_INVENTORY", "FAILED") in steps_of(final)
    assert not any(step == "CREATE_ORDER" for step, _ in steps_of(final))
    assert (inventory_of(plenty), inventory_of(scarce)) == (10, 3)
    for path in (f"/api/v1/orders/{purchase_id}", f"/api/v1/payments/{purchase_id}"):
        assert edge("GET", path, token=customer.token).status_code == 404, path


def test_a_refused_payment_cancels_the_order_and_gives_the_stock_back(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    # Given a product in stock
    product = make_product(inventory=10)

    # when a purchase pays in XXX, which the payment service refuses
    purchase_id = purchase(customer, [(product, 3)], currency_code="XXX")
    final = wait_final(customer, purchase_id)

    # then the saga compensates in reverse order and the purchase fails
    assert final["status"] == "FAILED"
    steps = steps_of(final)
    assert ("CREATE_PAYMENT", "FAILED") in steps
    rollbacks = [step for step, status in steps if status == "ROLLBACK"]
    assert rollbacks[-2:] == ["CREATE_ORDER", "UPDATE_PRODUCT_INVENTORY"]
    # the order exists, cancelled; there is no payment; the stock is whole again
    order = edge("GET", f"/api/v1/orders/{purchase_id}", token=customer.token)
    assert order.status_code == 200, order.text
    assert order.json()["status"] == "CANCELLED"
    payment = edge("GET", f"/api/v1/payments/{purchase_id}", token=customer.token)
    assert payment.status_code == 404
    assert inventory_of(product) == 10


def test_a_retried_post_with_the_same_idempotency_key_buys_once(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    product = make_product(inventory=10)
    key = uuid.uuid4().hex

    first = purchase(customer, [(product, 2)], idempotency_key=key)
    again = purchase(customer, [(product, 2)], idempotency_key=key)

    assert again == first
    assert wait_final(customer, first)["status"] == "COMPLETED"
    assert inventory_of(product) == 8


# ------------------------------------------------------------------ the race

UNITS = 50
CUSTOMERS = 200
PURCHASES_EACH = 1  # 200 distinct buyers of one unit each


def test_200_buyers_of_one_unit_race_for_50_units(make_product: Callable[..., int]) -> None:
    # Given 50 units of a product and 200 customers who want one unit each
    product = make_product(inventory=UNITS, price=990)
    buyers = [c for c in register_many(CUSTOMERS) for _ in range(PURCHASES_EACH)]
    lowest_seen: list[int] = []
    racing = threading.Event()

    def watch_stock() -> None:
        with read_only("product") as conn, conn.cursor() as cursor:
            while not racing.wait(0.02):
                cursor.execute("SELECT inventory FROM catalog_product WHERE id = %s", [product])
                lowest_seen.append(int(cursor.fetchone()[0]))

    watcher = threading.Thread(target=watch_stock, daemon=True)
    watcher.start()

    # when their 200 purchases are sent at once (50 at a time) through the edge
    with ThreadPoolExecutor(max_workers=50) as pool:
        ids = list(pool.map(lambda buyer: purchase(buyer, [(product, 1)]), buyers))
        finals = list(pool.map(wait_final, buyers, ids))
    racing.set()
    watcher.join()

    # then exactly 50 complete and 150 fail, and the stock ends at 0, never below
    assert len(set(ids)) == len(buyers) == 200
    outcome = Counter(final["status"] for final in finals)
    assert outcome == {"COMPLETED": UNITS, "FAILED": 200 - UNITS}
    failed_at = Counter(
        step
        for final in finals
        if final["status"] == "FAILED"
        for step, status in steps_of(final)
        if status == "FAILED"
    )
    assert failed_at == {"UPDATE_PRODUCT_INVENTORY": 200 - UNITS}
    assert inventory_of(product) == 0
    assert min(lowest_seen, default=0) >= 0

    # 50 orders and 50 payments, exactly those of the completed purchases
    completed = [final["id"] for final in finals if final["status"] == "COMPLETED"]
    assert count_by_status("order", "orders_order", ids) == {"CREATED": UNITS}
    assert count_by_status("payment", "payments_payment", ids) == {"COMPLETED": UNITS}
    with read_only("order") as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM orders_order WHERE id = ANY(%s::uuid[]) AND status = 'CREATED'",
            [completed],
        )
        assert cursor.fetchone() == (UNITS,)
    # the stock that left is the stock the completed purchases hold, one unit each
    with read_only("product") as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT r.state, count(*), sum(l.quantity) FROM catalog_reservation r"
            " JOIN catalog_reservationline l ON l.reservation_id = r.purchase_id"
            " WHERE r.purchase_id = ANY(%s::uuid[]) GROUP BY r.state",
            [ids],
        )
        assert cursor.fetchall() == [("RESERVED", UNITS, UNITS)]

    # each owner sees their order and payment; the next buyer sees neither
    owner_of = dict(zip(ids, buyers, strict=True))
    for index, purchase_id in enumerate(completed[:10]):
        owner = owner_of[purchase_id]
        order = edge("GET", f"/api/v1/orders/{purchase_id}", token=owner.token)
        payment = edge("GET", f"/api/v1/payments/{purchase_id}", token=owner.token)
        assert (order.status_code, payment.status_code) == (200, 200)
        assert (order.json()["status"], payment.json()["status"]) == ("CREATED", "COMPLETED")
        stranger = buyers[(buyers.index(owner) + PURCHASES_EACH) % len(buyers)]
        assert stranger.id != owner.id, index
        for path in ("purchases", "orders", "payments"):
            url = f"/api/v1/{path}/{purchase_id}"
            assert edge("GET", url, token=stranger.token).status_code == 404, url
            assert edge("GET", url).status_code == 401, url
