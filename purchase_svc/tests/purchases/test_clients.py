"""products_check against the stand-in ProductService: quotes, and gRPC codes as errors."""

from __future__ import annotations

import grpc
import pytest

from common.errors import ApplicationError, ErrorCode
from purchase_svc.purchases.clients import ProductQuote, products_check
from purchase_svc.tests.conftest import FakeCatalog


def test_known_products_are_quoted(products: FakeCatalog) -> None:
    products.add(1, price=1390, inventory=3)
    products.add(2, price=250, inventory=0)

    quotes = products_check(items=[(1, 2), (2, 1)])

    assert quotes == {
        1: ProductQuote(product_id=1, price=1390, inventory=3, enough=True),
        2: ProductQuote(product_id=2, price=250, inventory=0, enough=False),
    }


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, ErrorCode.INVALID_INPUT),
        (grpc.StatusCode.NOT_FOUND, ErrorCode.NOT_FOUND),
        (grpc.StatusCode.UNAVAILABLE, ErrorCode.UNAVAILABLE),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ErrorCode.UNAVAILABLE),
        (grpc.StatusCode.PERMISSION_DENIED, ErrorCode.UNAVAILABLE),
    ],
)
def test_a_refusal_becomes_an_application_error(
    products: FakeCatalog, code: grpc.StatusCode, expected: ErrorCode
) -> None:
    products.fail_with = code

    with pytest.raises(ApplicationError) as raised:
        products_check(items=[(1, 1)])

    assert raised.value.code is expected
