"""`ProductServicer` in-process, against the test database (test_grpc.py drives the
running service through the edge)."""

from __future__ import annotations

from typing import Any

import pytest

from product_svc.catalog import services
from product_svc.catalog.grpc import ProductServicer
from saga_proto import product_pb2

pytestmark = pytest.mark.django_db

UNKNOWN = 987654321987


def test_check_products_answers_the_name_the_customer_is_shown_with_the_price() -> None:
    category = services.category_create(name="grpc unit tests")
    whey = services.product_create(
        category_id=category.id, name="Whey 1kg", price=1390, inventory=10
    )
    context: Any = None  # a call that succeeds never touches its context

    reply = ProductServicer().CheckProducts(
        product_pb2.CheckProductsRequest(
            items=[
                product_pb2.PurchaseItem(product_id=whey.id, quantity=2),
                product_pb2.PurchaseItem(product_id=UNKNOWN, quantity=1),
            ]
        ),
        context,
    )

    assert [(s.product_id, s.exist, s.name, s.price) for s in reply.products] == [
        (whey.id, True, "Whey 1kg", 1390),
        (UNKNOWN, False, "", 0),
    ]
