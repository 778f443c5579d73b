"""REST endpoints of payments: a customer reads their own, nothing more.

Payments are written only by the saga (gRPC, grpc.py). Every endpoint needs an access
token (401 without one); another customer's payment, a tombstone and an id that is
not a UUID all answer 404, so ids cannot be probed. Errors answer the one JSON shape
of common.errors.
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
from payment_svc.payments import selectors
from payment_svc.payments.models import Payment

ERRORS = ErrorResponses(
    {400: "invalid filter", 401: "not authenticated", 404: "no such payment of yours"}
)


class PaymentOutputSerializer(serializers.Serializer):
    """A payment as selectors.payment_to_dict answers it (cached or not)."""

    id = serializers.UUIDField(help_text="the purchase id")
    customer_id = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="in the currency's minor unit")
    currency_code = serializers.CharField(help_text="ISO 4217")
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    created_at = serializers.CharField()
    updated_at = serializers.CharField()


class PaymentListApi(APIView):
    """GET: the caller's payments, newest first, paginated; `?status=` to filter."""

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Payment.Status.choices, required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=Payment.Status.values, required=False)],
        responses={200: PaymentOutputSerializer(many=True), **ERRORS(400, 401)},
        summary="Your payments",
    )
    def get(self, request: Request) -> Response:
        filters = query_filters(request, self.FilterSerializer)
        payments = selectors.payment_list(customer_id=customer_of(request).id, **filters)
        return paginated_response(
            request, self, payments, PaymentOutputSerializer, item=selectors.payment_to_dict
        )


class PaymentDetailApi(APIView):
    """GET: one of the caller's payments (read through the cache)."""

    @extend_schema(
        responses={200: PaymentOutputSerializer, **ERRORS(401, 404)},
        summary="One of your payments",
    )
    def get(self, request: Request, payment_id: str) -> Response:
        payment = get_or_404(
            selectors.payment_get_for_customer(
                payment_id=payment_id, customer_id=customer_of(request).id
            ),
            f"No payment {payment_id}.",
        )
        return Response(PaymentOutputSerializer(payment).data)
