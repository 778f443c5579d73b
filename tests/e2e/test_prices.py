"""Prices through the edge: the saga charges and records what the customer was shown.

The unit prices the purchase stored travel with the saga (PurchaseCreated); the order
records them and the payment charges their sum, so a price that changes while a
purchase is in flight changes neither (docs/business-rules.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from common.testing import create_product
from tests.e2e.conftest import Customer, edge, wait_final


def test_a_price_changed_mid_saga_leaves_order_total_payment_and_purchase_amount_equal(
    staff: Customer, category_id: int, customer: Customer
) -> None:
    # Given two products, one of which staff is about to reprice
    repriced = create_product(staff.token, category_id=category_id, retry=True, price=1390)
    steady = create_product(staff.token, category_id=category_id, retry=True, price=3780)
    shown = 2 * 1390 + 1 * 3780

    # when a customer buys 2 + 1 of them, and staff changes the first one's price at once
    posted = edge(
        "POST",
        "/api/v1/purchases",
        token=customer.token,
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={
            "order_items": [
                {"product_id": repriced["id"], "quantity": 2},
                {"product_id": steady["id"], "quantity": 1},
            ],
            "payment": {"currency_code": "VND"},
        },
    )
    changed = edge(
        "PUT",
        f"/api/v1/products/{repriced['id']}",
        token=staff.token,
        json=product_body(repriced, price=2990),
    )
    assert posted.status_code == 202, posted.text
    assert changed.status_code == 200, changed.text
    assert changed.json()["price"] == 2990
    purchase_id, amount = str(posted.json()["id"]), int(posted.json()["amount"])
    assert amount == shown  # the POST was priced before the change

    # then the purchase completes, and its order and payment agree with its amount
    assert wait_final(customer, purchase_id)["status"] == "COMPLETED"
    order = edge("GET", f"/api/v1/orders/{purchase_id}", token=customer.token)
    payment = edge("GET", f"/api/v1/payments/{purchase_id}", token=customer.token)
    assert order.status_code == payment.status_code == 200, (order.text, payment.text)
    assert order.json()["amount"] == payment.json()["amount"] == amount
    # at the unit prices the purchase was made at, line by line
    lines = sorted(
        (line["product_id"], line["unit_price"], line["quantity"], line["line_total"])
        for line in order.json()["lines"]
    )
    assert lines == sorted([(repriced["id"], 1390, 2, 2 * 1390), (steady["id"], 3780, 1, 3780)])
    assert sum(line[3] for line in lines) == amount


def product_body(product: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The full representation PUT replaces a product with: `product` as created, changed.

    (Its inventory is the one it was created with; this test asserts nothing on stock.)"""
    fields = ("category_id", "name", "description", "brand_name", "price", "inventory")
    return {**{field: product[field] for field in fields}, **changes}
