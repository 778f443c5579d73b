"""The product service as the order service sees it: names and prices, by gRPC.

Every call goes through the gRPC edge (common.grpc.client) with a deadline. Failures
become ApplicationErrors with the meaning the saga needs from CreateOrder:
- the product service could not answer (UNAVAILABLE, DEADLINE_EXCEEDED, ...):
  UNAVAILABLE, so the orchestrator retries the step;
- it refused the lookup as bad input: INVALID_INPUT (the saga compensates);
- any other refusal (a misconfigured route, say) is not the purchase's fault:
  UNAVAILABLE too, so the step's retry budget, not one bad moment, decides.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from common.errors import ApplicationError, ErrorCode
from common.grpc.client import stub
from common.grpc.errors import details_of, status_code_of
from saga_proto import product_pb2, product_pb2_grpc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProductFacts:
    """What an order keeps of a product: its name and its price now."""

    product_id: int
    name: str
    price: int


def products_get(*, product_ids: Sequence[int], timeout: float) -> dict[int, ProductFacts]:
    """Current name and price of each product that exists, by id (ProductService.GetProducts).

    Products that do not exist are left out; the caller decides what that means.
    """
    request = product_pb2.GetProductsRequest(product_ids=list(product_ids))
    try:
        reply = stub(product_pb2_grpc.ProductServiceStub).GetProducts(request, timeout=timeout)
    except grpc.RpcError as error:
        code = status_code_of(error)
        name = code.name if code is not None else "UNKNOWN"
        details = {"upstream": "product.ProductService/GetProducts", "upstream_status": name}
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            raise ApplicationError(
                ErrorCode.INVALID_INPUT,
                f"The product service refused the lookup: {details_of(error)}",
                details,
            ) from None
        logger.warning("GetProducts failed with %s: %s", name, details_of(error))
        raise ApplicationError(
            ErrorCode.UNAVAILABLE,
            f"The product service did not answer ({name}); try again.",
            details,
        ) from None
    return {
        int(p.id): ProductFacts(product_id=int(p.id), name=p.name, price=int(p.price))
        for p in reply.products
    }
