"""What the purchase service asks of the product service: prices, names and existence, by gRPC.

`ProductService.CheckProducts` through the gRPC edge, with a deadline. Its answers
become ApplicationErrors a client of the REST API can act on:
- a product that does not exist: 404 NOT_FOUND with the ids (a purchase of it can
  never succeed);
- the product service unreachable, slow or failing: 503 UNAVAILABLE, "try again";
  nothing was written, so a retry is safe.
Not enough stock is not refused here: stock changes, and the saga's reservation is
the one place that decides (DESIGN.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from common.errors import ApplicationError, ErrorCode
from common.events import MAX_ITEM_NAME_LENGTH
from common.grpc.client import stub
from purchase_svc.purchases.conf import config
from saga_proto import product_pb2, product_pb2_grpc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProductQuote:
    """What CheckProducts answered about one product of a would-be purchase: the price
    and the name the customer is shown, and the stock."""

    product_id: int
    price: int
    inventory: int
    enough: bool
    name: str = ""


def products_check(*, items: Sequence[tuple[int, int]]) -> dict[int, ProductQuote]:
    """Ask CheckProducts about `items` (product_id, quantity); answer a quote per product.

    Raises ApplicationError NOT_FOUND naming every unknown product, UNAVAILABLE when the
    product service cannot answer now, INVALID_INPUT when it refuses the request.
    """
    request = product_pb2.CheckProductsRequest(
        items=[product_pb2.PurchaseItem(product_id=p, quantity=q) for p, q in items]
    )
    try:
        reply = stub(product_pb2_grpc.ProductServiceStub).CheckProducts(
            request, timeout=config().product_check_timeout
        )
    except grpc.RpcError as error:
        raise _refusal(error) from None
    quotes: dict[int, ProductQuote] = {}
    missing: list[int] = []
    for status in reply.products:
        product_id = int(status.product_id)
        if not status.exist:
            missing.append(product_id)
            continue
        quotes[product_id] = ProductQuote(
            product_id=product_id,
            price=int(status.price),
            inventory=int(status.inventory),
            enough=bool(status.enough),
            # The event's limit (a product's own): a longer name would make it poison.
            name=status.name[:MAX_ITEM_NAME_LENGTH],
        )
    missing.extend(p for p, _ in items if p not in quotes and p not in missing)
    if missing:
        ids = sorted(set(missing))
        raise ApplicationError(
            ErrorCode.NOT_FOUND,
            f"No such product: {', '.join(str(i) for i in ids)}.",
            {"product_ids": ids},
        )
    return quotes


def _refusal(error: grpc.RpcError) -> ApplicationError:
    code_of = getattr(error, "code", None)
    code = code_of() if callable(code_of) else None
    details_of = getattr(error, "details", None)
    message = details_of() if callable(details_of) else ""
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return ApplicationError(ErrorCode.INVALID_INPUT, f"The product service refused: {message}")
    if code is grpc.StatusCode.NOT_FOUND:
        return ApplicationError(ErrorCode.NOT_FOUND, message or "No such product.")
    logger.warning("CheckProducts failed: %s %s", code, message)
    return ApplicationError(
        ErrorCode.UNAVAILABLE,
        "The product service is not available right now; try again.",
        {"retry_after": 1},
    )
