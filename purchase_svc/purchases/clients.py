"""The purchase service's calls to its peers: the product service (prices, names, existence).

`ProductService.CheckProducts` through the gRPC edge, with a deadline, by
`common.grpc.client.call`, so its failures become the ApplicationErrors a client of the
REST API can act on (`common.grpc.client.application_error`):
- a product that does not exist: 404 NOT_FOUND with the ids (a purchase of it can
  never succeed);
- the product service unreachable, slow or failing: 503 UNAVAILABLE, "try again";
  nothing was written, so a retry is safe.
Not enough stock is not refused here: stock changes, and the saga's reservation is
the one place that decides (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.contract.events import MAX_ITEM_NAME_LENGTH
from common.errors import ApplicationError, ErrorCode
from common.grpc.client import call, stub
from purchase_svc.purchases.conf import config
from saga_proto import product_pb2, product_pb2_grpc


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
    reply = call(
        stub(product_pb2_grpc.ProductServiceStub).CheckProducts,
        request,
        timeout=config().product_check_timeout,
        peer="product",
    )
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
