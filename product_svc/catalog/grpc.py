"""gRPC `product.ProductService`: thin adapters over selectors and services.

Listed in settings.GRPC_SERVICERS; `manage.py grpcserve` calls `register(server)`.
A refusal is an ApplicationError answered with its gRPC status (abort_grpc):
unknown product NOT_FOUND, not enough stock FAILED_PRECONDITION, bad input
INVALID_ARGUMENT, so the saga knows to compensate rather than retry.

The batch forms (ReserveInventoryBatch, ReleaseInventoryBatch) hand the whole wave to
catalog.batches, which decides every item as its single call would (in purchase-id
order) in one transaction and a constant number of statements; each item's refusal
becomes its result, with the status its single call would have ended with.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import grpc

from common.errors import ApplicationError, ErrorCode
from common.grpc.servicer import MAX_BATCH_ITEMS, ItemResult, answer, answer_all
from common.ids import parse_purchase_id, parse_purchase_ids
from product_svc.catalog import batches, selectors, services
from product_svc.catalog.startup import ensure_product_filter
from saga_proto import product_pb2, product_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = "product.ProductService"
MAX_IDS_PER_CALL = 1000


def _product_reply(product: dict[str, Any]) -> product_pb2.Product:
    return product_pb2.Product(
        id=product["id"],
        category_id=product["category_id"],
        name=product["name"],
        description=product["description"],
        brand_name=product["brand_name"],
        price=product["price"],
        inventory=product["inventory"],
    )


def _status_reply(line: selectors.ProductAvailability) -> product_pb2.ProductStatus:
    if line.product is None:
        return product_pb2.ProductStatus(product_id=line.product_id, exist=False)
    return product_pb2.ProductStatus(
        product_id=line.product_id,
        exist=True,
        name=line.product["name"],
        price=line.product["price"],
        inventory=line.product["inventory"],
        enough=line.enough,
    )


def _items(items: Iterable[product_pb2.PurchaseItem]) -> list[tuple[int, int]]:
    return [(int(item.product_id), int(item.quantity)) for item in items]


def _reserve(request: product_pb2.ReserveInventoryRequest) -> product_pb2.ReserveInventoryResponse:
    """ReserveInventory's work."""
    result = services.inventory_reserve(
        purchase_id=parse_purchase_id(request.purchase_id),
        items=_items(request.items),
    )
    return product_pb2.ReserveInventoryResponse(
        purchase_id=str(result.purchase_id),
        reserved=[
            product_pb2.PurchaseItem(product_id=line.product_id, quantity=line.quantity)
            for line in result.lines
        ],
    )


def _release(request: product_pb2.ReleaseInventoryRequest) -> product_pb2.ReleaseInventoryResponse:
    """ReleaseInventory's work."""
    result = services.inventory_release(purchase_id=parse_purchase_id(request.purchase_id))
    return product_pb2.ReleaseInventoryResponse(
        purchase_id=str(result.purchase_id), released=result.released
    )


def _batch_reply(results: Sequence[ItemResult[object]]) -> product_pb2.InventoryBatchReply:
    return product_pb2.InventoryBatchReply(
        results=[product_pb2.InventoryBatchResult(**result.status_fields()) for result in results]
    )


class ProductServicer(product_pb2_grpc.ProductServiceServicer):
    def CheckProducts(
        self, request: product_pb2.CheckProductsRequest, context: grpc.ServicerContext
    ) -> product_pb2.CheckProductsResponse:
        def call() -> product_pb2.CheckProductsResponse:
            items = _items(request.items)
            if len(items) > MAX_IDS_PER_CALL:
                raise ApplicationError(
                    ErrorCode.INVALID_INPUT, f"At most {MAX_IDS_PER_CALL} items per call."
                )
            for _product_id, quantity in items:
                if quantity < 1:
                    raise ApplicationError(
                        ErrorCode.INVALID_INPUT, f"quantity must be positive, not {quantity}."
                    )
            lines = selectors.product_availability(items=items)
            return product_pb2.CheckProductsResponse(products=[_status_reply(li) for li in lines])

        return answer(context, call, service=SERVICE_NAME, logger=logger, database_errors=False)

    def GetProducts(
        self, request: product_pb2.GetProductsRequest, context: grpc.ServicerContext
    ) -> product_pb2.GetProductsResponse:
        def call() -> product_pb2.GetProductsResponse:
            ids = list(dict.fromkeys(int(i) for i in request.product_ids))
            if len(ids) > MAX_IDS_PER_CALL:
                raise ApplicationError(
                    ErrorCode.INVALID_INPUT, f"At most {MAX_IDS_PER_CALL} ids per call."
                )
            found = selectors.product_get_many(product_ids=ids)
            return product_pb2.GetProductsResponse(
                products=[_product_reply(found[i]) for i in ids if i in found]
            )

        return answer(context, call, service=SERVICE_NAME, logger=logger, database_errors=False)

    def ReserveInventory(
        self, request: product_pb2.ReserveInventoryRequest, context: grpc.ServicerContext
    ) -> product_pb2.ReserveInventoryResponse:
        return answer(
            context,
            lambda: _reserve(request),
            service=SERVICE_NAME,
            logger=logger,
            database_errors=False,
        )

    def ReleaseInventory(
        self, request: product_pb2.ReleaseInventoryRequest, context: grpc.ServicerContext
    ) -> product_pb2.ReleaseInventoryResponse:
        return answer(
            context,
            lambda: _release(request),
            service=SERVICE_NAME,
            logger=logger,
            database_errors=False,
        )

    def ReserveInventoryBatch(
        self, request: product_pb2.ReserveInventoryBatchRequest, context: grpc.ServicerContext
    ) -> product_pb2.InventoryBatchReply:
        def reserve_all(
            items: Sequence[product_pb2.ReserveInventoryRequest],
        ) -> Sequence[object]:
            return batches.inventory_reserve_batch(
                commands=[batches.ReserveCommand(i.purchase_id, _items(i.items)) for i in items]
            )

        return _batch_reply(
            answer_all(
                context,
                request.items,
                reserve_all,
                service=SERVICE_NAME,
                logger=logger,
                database_errors=False,
            )
        )

    def ReleaseInventoryBatch(
        self, request: product_pb2.ReleaseInventoryBatchRequest, context: grpc.ServicerContext
    ) -> product_pb2.InventoryBatchReply:
        def release_all(
            items: Sequence[product_pb2.ReleaseInventoryRequest],
        ) -> Sequence[object]:
            return batches.inventory_release_batch(purchase_ids=[i.purchase_id for i in items])

        return _batch_reply(
            answer_all(
                context,
                request.items,
                release_all,
                service=SERVICE_NAME,
                logger=logger,
                database_errors=False,
            )
        )

    def GetReservations(
        self, request: product_pb2.GetReservationsRequest, context: grpc.ServicerContext
    ) -> product_pb2.GetReservationsResponse:
        def call() -> product_pb2.GetReservationsResponse:
            ids = parse_purchase_ids(request.purchase_ids, limit=MAX_BATCH_ITEMS)
            return product_pb2.GetReservationsResponse(
                reservations=[
                    product_pb2.Reservation(
                        purchase_id=str(reservation.purchase_id),
                        state=reservation.state,
                        lines=[
                            product_pb2.PurchaseItem(
                                product_id=line.product_id, quantity=line.quantity
                            )
                            for line in reservation.lines.all()
                        ],
                    )
                    for reservation in selectors.reservation_get_many(purchase_ids=ids)
                ]
            )

        return answer(context, call, service=SERVICE_NAME, logger=logger)


def register(server: grpc.Server) -> list[str]:
    """Add ProductService to `server` (settings.GRPC_SERVICERS) and answer its name."""
    ensure_product_filter()
    product_pb2_grpc.add_ProductServiceServicer_to_server(ProductServicer(), server)
    return [SERVICE_NAME]
