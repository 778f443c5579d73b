"""REST endpoints of orders: a customer reads their own, nothing more.

Orders are written only by the saga (gRPC, grpc.py). Every endpoint needs an access
token (401 without one); another customer's order, a tombstone and an id that is not
a UUID all answer 404, so ids cannot be probed. Errors answer the one JSON shape of
common.errors.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.apis import get_or_404, query_filters
from common.auth import customer_of
from common.openapi import ErrorResponses
from common.pagination import paginated_response
from order_svc.orders import selectors
from order_svc.orders.models import Order

ERRORS = ErrorResponses(
    {400: "invalid filter", 401: "not authenticated", 404: "no such order of yours"}
)


class OrderLineOutputSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    # (The default answers an order cached before its lines had names again: for the
    # cache's lifetime after the deploy, such an entry has no "name".)
    name = serializers.CharField(default="", help_text="the product's name the customer was shown")
    unit_price = serializers.IntegerField(
        help_text="the price the purchase was made at, minor unit"
    )
    quantity = serializers.IntegerField()
    line_total = serializers.IntegerField(help_text="unit_price x quantity")


class OrderOutputSerializer(serializers.Serializer):
    """An order as selectors.order_to_dict answers it (cached or not)."""

    id = serializers.UUIDField(help_text="the purchase id")
    customer_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Order.Status.choices)
    amount = serializers.IntegerField(help_text="sum of the line totals, minor unit")
    lines = OrderLineOutputSerializer(many=True)
    created_at = serializers.CharField()
    updated_at = serializers.CharField()


class OrderListApi(APIView):
    """GET: the caller's orders, newest first, paginated; `?status=` to filter."""

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Order.Status.choices, required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=Order.Status.values, required=False)],
        responses={200: OrderOutputSerializer(many=True), **ERRORS(400, 401)},
        summary="Your orders",
    )
    def get(self, request: Request) -> Response:
        filters = query_filters(request, self.FilterSerializer)
        orders = selectors.order_list(customer_id=customer_of(request).id, **filters)
        return paginated_response(
            request, self, orders, OrderOutputSerializer, item=selectors.order_to_dict
        )


class OrderDetailApi(APIView):
    """GET: one of the caller's orders, with its lines (read through the cache)."""

    @extend_schema(
        responses={200: OrderOutputSerializer, **ERRORS(401, 404)},
        summary="One of your orders",
    )
    def get(self, request: Request, order_id: str) -> Response:
        order = get_or_404(
            selectors.order_get_for_customer(
                order_id=order_id, customer_id=customer_of(request).id
            ),
            f"No order {order_id}.",
        )
        return Response(OrderOutputSerializer(order).data)
