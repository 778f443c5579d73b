"""The purchase API under /api/v1/purchases: thin views over services and selectors.

Every endpoint needs a customer's access token and shows only that customer's
purchases (another's id answers 404). Errors answer the one JSON shape of
common.errors. docs/adr/0007-purchase-api-and-sse.md records the decisions.
"""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.apis import get_or_404
from common.auth import (
    InvalidTokenError,
    JWTAuthentication,
    TokenClaims,
    TokenCustomer,
    customer_of,
    verify_access_token,
)
from common.contract.events import PurchaseStatus, StepStatus
from common.errors import ApplicationError, ErrorCode
from common.ids import MAX_INT64
from common.openapi import ErrorResponses, JWTBearerScheme
from common.pagination import paginated_response
from common.serializers import StrictCharField, StrictIntegerField, StrictSerializer
from common.topology import SERVICES
from purchase_svc.purchases import selectors, services
from purchase_svc.purchases.conf import config
from purchase_svc.purchases.idempotency import (
    HEADER as IDEMPOTENCY_HEADER,
)
from purchase_svc.purchases.idempotency import (
    REPLAYED_HEADER,
    idempotency_key,
    request_fingerprint,
)
from purchase_svc.purchases.models import Purchase
from purchase_svc.purchases.streams import (
    SLOTS,
    PurchaseEventStream,
    socket_closed_by_peer,
    step_data,
    stream_has_nothing_new,
)

_errors = ErrorResponses(
    {
        400: "invalid input, or malformed JSON",
        401: "not authenticated",
        404: "no such purchase (or not yours), or an unknown product",
        413: "body too large",
        422: "Idempotency-Key reused with a different body",
        503: "the product service (or the stream capacity) is busy; try again",
    }
)

_cancel_errors = ErrorResponses(
    {
        400: "a body other than empty or {}, or an invalid Idempotency-Key",
        401: "not authenticated",
        404: "no such purchase (or not yours)",
        409: "the purchase already ended: completed (a refund is another flow), or failed",
        422: "Idempotency-Key already used to cancel another purchase",
    }
)


def purchase_url(purchase_id: uuid.UUID | str) -> str:
    """Where a purchase is read, as the edge routes it."""
    return f"{SERVICES['purchase'].route_prefixes[0]}/{purchase_id}"


def purchase_links(purchase_id: uuid.UUID | str) -> dict[str, str]:
    url = purchase_url(purchase_id)
    return {"self": url, "events": f"{url}/events", "cancel": f"{url}/cancel"}


# ------------------------------------------------------------------ strict input


class CurrencyCodeField(StrictCharField):
    """An ISO 4217 code out of config().known_currencies, exactly as written there."""

    default_error_messages = {"unknown": "Unknown currency code {value!r}; known: {known}."}

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        known = config().known_currencies
        if value not in known:
            self.fail("unknown", value=value, known=", ".join(known))
        return value


# ------------------------------------------------------------------ representations


class PurchaseLinksSerializer(serializers.Serializer):
    self = serializers.CharField()
    events = serializers.CharField()
    # Not required: the stored first answer of a purchase made before cancels has none.
    cancel = serializers.CharField(required=False, help_text="POST here to cancel the purchase.")


class PurchaseAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=[s.value for s in PurchaseStatus])
    amount = serializers.IntegerField()
    currency_code = serializers.CharField()
    links = PurchaseLinksSerializer()


class PurchaseItemSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    quantity = serializers.IntegerField()
    unit_price = serializers.IntegerField()


class PurchaseWaitingSerializer(serializers.Serializer):
    step = serializers.CharField()
    reason = serializers.CharField()
    attempt = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField()


class PurchaseSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=[s.value for s in PurchaseStatus])
    reason = serializers.CharField(
        help_text="Why the purchase ended, when not by a step's own outcome: `cancelled`"
        " (it was cancelled) or `deadline` (its saga ran out of time; status FAILED);"
        " empty otherwise."
    )
    cancel_requested_at = serializers.DateTimeField(
        allow_null=True, help_text="When the customer first asked to cancel; null if never."
    )
    amount = serializers.IntegerField()
    currency_code = serializers.CharField()
    items = PurchaseItemSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    links = serializers.SerializerMethodField()

    @extend_schema_field(PurchaseLinksSerializer)
    def get_links(self, purchase: Purchase) -> dict[str, str]:
        return purchase_links(purchase.id)


class PurchaseDetailSerializer(PurchaseSummarySerializer):
    steps = serializers.SerializerMethodField()
    waiting = serializers.SerializerMethodField(
        help_text="While the purchase is PENDING because a step's call must be made again"
        " (its participant failed or is known to be down): which step, why, and when."
    )

    def to_representation(self, instance: Purchase) -> dict[str, Any]:
        self._step_rows = selectors.purchase_steps(purchase_id=instance.id)  # read once
        return super().to_representation(instance)

    def get_steps(self, purchase: Purchase) -> list[dict[str, Any]]:
        return [step_data(step) for step in self._step_rows]

    @extend_schema_field(PurchaseWaitingSerializer(allow_null=True))
    def get_waiting(self, purchase: Purchase) -> dict[str, Any] | None:
        last = self._step_rows[-1] if self._step_rows else None
        if purchase.is_final or last is None or last.status != StepStatus.RETRY:
            return None
        return {
            "step": last.step,
            "reason": last.error,
            "attempt": last.attempt,
            "next_attempt_at": last.retry_at,
        }


# ------------------------------------------------------------------ views


def _first_answer(purchase: Purchase) -> tuple[int, str]:
    """The 202 answer to the POST that creates `purchase`, stored with it
    (services.purchase_create) so that a replay answers the same bytes."""
    body = {
        "id": str(purchase.id),
        "status": PurchaseStatus.PENDING.value,
        "amount": purchase.amount,
        "currency_code": purchase.currency_code,
        "links": purchase_links(purchase.id),
    }
    return HTTPStatus.ACCEPTED.value, json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _cancel_answer(purchase: Purchase) -> tuple[int, str]:
    """The 202 answer to a cancel of `purchase`: its body as GET shows it now, stored
    under the request's Idempotency-Key (services.purchase_cancel)."""
    body = JSONRenderer().render(PurchaseDetailSerializer(purchase).data)
    return HTTPStatus.ACCEPTED.value, body.decode()


def _own_purchase(request: Request, purchase_id: Any) -> Purchase:
    """The caller's purchase; 404 alike for an unknown id and another's purchase."""
    return get_or_404(
        selectors.purchase_get(purchase_id=purchase_id, customer_id=customer_of(request).id),
        "No such purchase.",
    )


def _kept_answer(purchase_id: Any, status: int, body: str, *, replayed: bool) -> HttpResponse:
    """A keyed request's first answer about a purchase, byte for byte, as first sent or
    replayed (the POST that created it, a cancel of it)."""
    response = HttpResponse(body, status=status, content_type="application/json")
    response["Location"] = purchase_url(purchase_id)
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


def _accepted(purchase: Purchase, *, replayed: bool) -> HttpResponse:
    """The stored first answer of the POST that created `purchase`."""
    return _kept_answer(
        purchase.id, purchase.response_status, purchase.response_body, replayed=replayed
    )


def _idempotency_parameter(description: str) -> OpenApiParameter:
    """The schema of the optional Idempotency-Key header of a POST."""
    return OpenApiParameter(
        IDEMPOTENCY_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description=f"Up to 128 visible ASCII characters. {description}",
    )


class PurchasesApi(APIView):
    """POST: create a purchase (202). GET: the caller's purchases, newest first."""

    class InputSerializer(StrictSerializer):
        class LineSerializer(StrictSerializer):
            product_id = StrictIntegerField(min_value=1, max_value=MAX_INT64)
            quantity = StrictIntegerField(min_value=1)

            def validate_quantity(self, value: int) -> int:
                limit = config().max_quantity
                if value > limit:
                    raise serializers.ValidationError(f"At most {limit} units of a product.")
                return value

        class PaymentSerializer(StrictSerializer):
            currency_code = CurrencyCodeField()

        order_items = LineSerializer(many=True, allow_empty=False)
        payment = PaymentSerializer()

        def validate_order_items(self, value: list[dict[str, int]]) -> list[dict[str, int]]:
            limit = config().max_lines
            if len(value) > limit:
                raise serializers.ValidationError(f"At most {limit} lines per purchase.")
            return value

    @extend_schema(
        operation_id="purchase_create",
        request=InputSerializer,
        parameters=[
            _idempotency_parameter(
                "A retry with the same key (and body) answers the first response instead of"
                " creating a purchase."
            )
        ],
        responses={202: PurchaseAcceptedSerializer, **_errors(400, 401, 404, 413, 422, 503)},
    )
    def post(self, request: Request) -> HttpResponse:
        customer_id = customer_of(request).id
        key = idempotency_key(request)
        fingerprint = request_fingerprint(request.data)
        if key is not None:
            earlier = services.purchase_replay(
                customer_id=customer_id, idempotency_key=key, request_fingerprint=fingerprint
            )
            if earlier is not None:
                return _accepted(earlier, replayed=True)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = services.purchase_create(
            customer_id=customer_id,
            lines=[
                services.PurchaseLine(line["product_id"], line["quantity"])
                for line in data["order_items"]
            ],
            currency_code=data["payment"]["currency_code"],
            first_answer=_first_answer,
            idempotency_key=key,
            request_fingerprint=fingerprint,
        )
        return _accepted(created.purchase, replayed=created.replayed)

    @extend_schema(
        operation_id="purchase_list",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=[s.value for s in PurchaseStatus]),
        ],
        responses={200: PurchaseSummarySerializer(many=True), **_errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status")
        try:
            wanted = PurchaseStatus(status) if status else None
        except ValueError:
            raise ApplicationError(
                ErrorCode.INVALID_INPUT,
                "The request has invalid fields.",
                {"fields": {"status": [f"One of {', '.join(s.value for s in PurchaseStatus)}."]}},
            ) from None
        purchases = selectors.purchase_list(customer_id=customer_of(request).id, status=wanted)
        return paginated_response(request, self, purchases, PurchaseSummarySerializer)


class PurchaseCancelApi(APIView):
    """POST: ask to cancel the caller's purchase (202 while it is not final)."""

    class InputSerializer(StrictSerializer):
        """No fields: the body is empty or `{}`."""

    @extend_schema(
        operation_id="purchase_cancel",
        description="Ask the purchase's saga to stop and undo what it did. 202 with the"
        " purchase: still PENDING (with `cancel_requested_at`) until the saga ends"
        " CANCELLED; asking again, or once it is CANCELLED, answers the same. 409"
        " (`failed_precondition`) once it ended otherwise: `details.reason` is"
        " `purchase_completed` (undoing it is a refund, another flow) or `purchase_ended`"
        " (FAILED or NEEDS_ATTENTION).",
        request=InputSerializer,
        parameters=[
            _idempotency_parameter(
                "A retry with the same key answers the first response again; the key with"
                " another purchase is 422."
            )
        ],
        responses={202: PurchaseDetailSerializer, **_cancel_errors(400, 401, 404, 409, 422)},
    )
    def post(self, request: Request, purchase_id: Any) -> HttpResponse:
        purchase = _own_purchase(request, purchase_id)
        key = idempotency_key(request)
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        cancellation = services.purchase_cancel(
            purchase=purchase,
            answer=_cancel_answer,
            idempotency_key=key,
            request_fingerprint=request_fingerprint({"cancel": str(purchase.id)}),
        )
        status, body = cancellation.answer
        return _kept_answer(purchase.id, status, body, replayed=cancellation.replayed)


class PurchaseDetailApi(APIView):
    @extend_schema(
        operation_id="purchase_get",
        responses={200: PurchaseDetailSerializer, **_errors(401, 404)},
    )
    def get(self, request: Request, purchase_id: Any) -> Response:
        purchase = _own_purchase(request, purchase_id)
        return Response(PurchaseDetailSerializer(purchase).data)


# ------------------------------------------------------------------ Server-Sent Events


class QueryTokenAuthentication(JWTAuthentication):
    """Bearer header as everywhere, or `?access_token=` for EventSource, which cannot
    set headers. Only the event stream accepts it; the header wins when both come."""

    def authenticate(self, request: Request) -> tuple[TokenCustomer, TokenClaims] | None:
        found = super().authenticate(request)
        if found is not None:
            return found
        token = request.query_params.get("access_token")
        if token is None:
            return None
        if not token:
            raise InvalidTokenError()
        claims = verify_access_token(token)
        return TokenCustomer.from_claims(claims), claims


class QueryTokenScheme(OpenApiAuthenticationExtension):
    """OpenAPI: the Bearer header, or (for EventSource) the `access_token` query parameter."""

    target_class = QueryTokenAuthentication
    name = ["streamBearerAuth", "accessTokenQuery"]

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[Any]]]:
        return [{"streamBearerAuth": []}, {"accessTokenQuery": []}]  # either one

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:
        return [
            JWTBearerScheme.get_security_definition(self, auto_schema),  # type: ignore[arg-type]
            {
                "type": "apiKey",
                "in": "query",
                "name": "access_token",
                "description": "The same access token, for EventSource clients.",
            },
        ]


class JsonErrorsNegotiation(BaseContentNegotiation):
    """The stream is built by hand; errors before it answer JSON whatever the Accept
    header says (EventSource sends `Accept: text/event-stream`)."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: str | None = None
    ) -> Any:
        return (renderers[0], renderers[0].media_type)


class PurchaseEventsApi(APIView):
    authentication_classes = [QueryTokenAuthentication]
    content_negotiation_class = JsonErrorsNegotiation
    # No HEAD: it would open (and hold) a stream only to discard its body.
    http_method_names = ["get", "options"]

    @extend_schema(
        operation_id="purchase_events",
        description="Server-Sent Events: `state` on connect, a `step` per step change, then"
        " the final `status`, and the stream ends. Send `Last-Event-ID` to resume after a"
        " step; 204 means the purchase is final and nothing is new. `?access_token=` is"
        " accepted for EventSource clients.",
        parameters=[
            OpenApiParameter("access_token", OpenApiTypes.STR),
            OpenApiParameter("Last-Event-ID", OpenApiTypes.INT, OpenApiParameter.HEADER),
        ],
        responses={
            (200, "text/event-stream"): OpenApiTypes.STR,
            204: OpenApiResponse(description="final, and the client has seen everything"),
            **_errors(401, 404, 503),
        },
    )
    def get(self, request: Request, purchase_id: Any) -> HttpResponse | StreamingHttpResponse:
        purchase = _own_purchase(request, purchase_id)
        after_id = _last_event_id(request)
        if after_id and stream_has_nothing_new(purchase=purchase, after_id=after_id):
            return HttpResponse(status=204)  # tells EventSource to stop reconnecting
        if not SLOTS.try_acquire():
            raise ApplicationError(
                ErrorCode.UNAVAILABLE,
                "Too many event streams are open; try again shortly.",
                {"retry_after": 5},
            )
        response = StreamingHttpResponse(
            PurchaseEventStream(
                purchase_id=purchase.id,
                after_id=after_id,
                release=SLOTS.release,
                client_gone=socket_closed_by_peer(request.META.get("gunicorn.socket")),
            ),
            content_type="text/event-stream; charset=utf-8",
        )
        response["Cache-Control"] = "no-cache"
        # No buffering between us and the client (nginx honours this; Traefik streams
        # text/event-stream as it comes).
        response["X-Accel-Buffering"] = "no"
        return response


def _last_event_id(request: Request) -> int:
    """EventSource's `Last-Event-ID` (the last step id it saw); 0 when absent or not ours."""
    raw = request.headers.get("Last-Event-ID", "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 19 else 0
