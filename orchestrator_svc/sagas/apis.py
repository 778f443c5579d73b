"""A small read API over sagas for staff: `/api/v1/sagas` and `/api/v1/sagas/{purchase_id}`.

Thin adapters over selectors; errors answer the one JSON shape of common.errors.
"""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.apis import get_or_404, query_filters
from common.pagination import paginated_response
from common.permissions import IsStaff
from orchestrator_svc.sagas import selectors
from orchestrator_svc.sagas.models import SagaState


class StepLogOutputSerializer(serializers.Serializer):
    step = serializers.CharField()
    status = serializers.CharField()
    attempt = serializers.IntegerField()
    duration_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    sequence = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class SagaOutputSerializer(serializers.Serializer):
    purchase_id = serializers.UUIDField()
    customer_id = serializers.IntegerField()
    state = serializers.CharField()
    step = serializers.SerializerMethodField()
    phase = serializers.CharField()
    attempt = serializers.IntegerField()
    sequence = serializers.IntegerField()
    next_run_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    deadline_at = serializers.DateTimeField(allow_null=True)
    cancel_requested_at = serializers.DateTimeField(allow_null=True)
    cancel_requested_by = serializers.CharField()
    # Why it stopped going forward when no step decided it: "cancelled", "deadline" or "".
    stop_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_step(self, saga: object) -> str:
        return selectors.saga_current_step(saga)  # type: ignore[arg-type]


class SagaDetailOutputSerializer(SagaOutputSerializer):
    steps = StepLogOutputSerializer(many=True, source="step_logs.all")


class SagaFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=SagaState.choices, required=False)
    customer_id = serializers.IntegerField(min_value=1, required=False)


class SagaListApi(APIView):
    """GET (staff): sagas, newest first; `?state=` and `?customer_id=` filter."""

    permission_classes = [IsStaff]

    @extend_schema(
        parameters=[SagaFilterSerializer],
        responses=SagaOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        sagas = selectors.saga_list(**query_filters(request, SagaFilterSerializer))
        return paginated_response(request, self, sagas, SagaOutputSerializer)


class SagaDetailApi(APIView):
    """GET (staff): one saga with its step log."""

    permission_classes = [IsStaff]

    @extend_schema(responses=SagaDetailOutputSerializer)
    def get(self, request: Request, purchase_id: uuid.UUID) -> Response:
        saga = get_or_404(
            selectors.saga_get(purchase_id=str(purchase_id)), "No saga has this purchase id."
        )
        return Response(SagaDetailOutputSerializer(saga).data)
