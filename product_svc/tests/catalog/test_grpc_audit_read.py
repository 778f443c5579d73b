"""`ProductService.GetReservations` through the gRPC edge: the read the orchestrator's
consistency audit makes, many purchases in one call, answered from product_db."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from common.grpc.servicer import MAX_BATCH_ITEMS
from product_svc.tests.catalog.test_grpc import DEADLINE, new_purchase, release, reserve
from saga_proto import product_pb2

pytestmark = pytest.mark.live

Maker = Callable[..., dict[str, Any]]


def get_reservations(products: Any, *purchase_ids: str) -> Any:
    return products.GetReservations(
        product_pb2.GetReservationsRequest(purchase_ids=list(purchase_ids)), timeout=DEADLINE
    )


def test_reservations_of_many_purchases_in_one_call(products: Any, make_product: Maker) -> None:
    # Given one purchase holding stock, one that released it and one never seen
    product = make_product(inventory=10)
    held, released, unknown = new_purchase(), new_purchase(), new_purchase()
    reserve(products, held, (product["id"], 2))
    reserve(products, released, (product["id"], 3))
    release(products, released)

    # when the audit asks about all three at once
    reply = get_reservations(products, held, released, unknown)

    # then each reservation is answered as it stands, the unknown one left out
    found = {
        r.purchase_id: (r.state, [(line.product_id, line.quantity) for line in r.lines])
        for r in reply.reservations
    }
    assert found == {
        held: ("RESERVED", [(product["id"], 2)]),
        released: ("RELEASED", [(product["id"], 3)]),
    }


@pytest.mark.parametrize(
    "purchase_ids",
    [["not-a-uuid"], [str(uuid.uuid4()) for _ in range(MAX_BATCH_ITEMS + 1)]],
    ids=["malformed id", "too many ids"],
)
def test_bad_input_answers_invalid_argument(products: Any, purchase_ids: list[str]) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        get_reservations(products, *purchase_ids)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
