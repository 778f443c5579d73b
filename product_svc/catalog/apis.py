"""REST endpoints of the catalog: thin adapters over services and selectors.

Reads are public; writes need a staff token (IsStaffOrReadOnly). Bodies are
validated by each view's InputSerializer, which refuses fields it does not know.
Errors answer the one JSON shape of common.errors.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.apis import get_or_404, query_filters
from common.ids import MAX_INT64
from common.openapi import ErrorResponses
from common.pagination import paginated_response
from common.permissions import IsStaffOrReadOnly
from common.serializers import StrictCharField, StrictIntegerField, StrictSerializer
from product_svc.catalog import selectors, services
from product_svc.catalog.models import Category


class CatalogInputSerializer(StrictSerializer):
    # No docstring: the OpenAPI description stays StrictSerializer's.
    unknown_field_message = "Unknown field."


# The errors of the catalog's own rules; common.openapi documents the shared ones.
_errors = ErrorResponses({409: "A category of this name exists already."})


# ------------------------------------------------------------------ categories


class CategoryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class CategoryInputSerializer(CatalogInputSerializer):
    name = StrictCharField(max_length=100)
    description = StrictCharField(max_length=2000, allow_blank=True, default="")


class CategoryListCreateApi(APIView):
    """GET: the categories, paginated. POST (staff): create one; answers it with its id."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(responses=CategoryOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated_response(
            request, self, selectors.category_list(), CategoryOutputSerializer
        )

    @extend_schema(
        request=CategoryInputSerializer, responses={201: CategoryOutputSerializer, **_errors(409)}
    )
    def post(self, request: Request) -> Response:
        body = CategoryInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        category = services.category_create(**body.validated_data)
        return Response(
            CategoryOutputSerializer(category).data,
            status=201,
            headers={"Location": f"/api/v1/categories/{category.id}"},
        )


class CategoryDetailApi(APIView):
    """GET: one category. PUT (staff): replace its name and description."""

    permission_classes = [IsStaffOrReadOnly]

    def _get(self, category_id: int) -> Category:
        return get_or_404(
            selectors.category_get(category_id=category_id), f"No category {category_id}."
        )

    @extend_schema(responses=CategoryOutputSerializer)
    def get(self, request: Request, category_id: int) -> Response:
        return Response(CategoryOutputSerializer(self._get(category_id)).data)

    @extend_schema(
        request=CategoryInputSerializer, responses={200: CategoryOutputSerializer, **_errors(409)}
    )
    def put(self, request: Request, category_id: int) -> Response:
        self._get(category_id)  # 404 before judging the body
        body = CategoryInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        category = services.category_update(category_id=category_id, **body.validated_data)
        return Response(CategoryOutputSerializer(category).data)


# -------------------------------------------------------------------- products


class ProductOutputSerializer(serializers.Serializer):
    """A product as selectors.product_to_dict answers it (cached or not)."""

    id = serializers.IntegerField()
    category_id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    brand_name = serializers.CharField()
    price = serializers.IntegerField(help_text="in the currency's minor unit")
    inventory = serializers.IntegerField(help_text="units in stock")
    created_at = serializers.CharField()
    updated_at = serializers.CharField()


class ProductInputSerializer(CatalogInputSerializer):
    category_id = StrictIntegerField(min_value=1, max_value=MAX_INT64)
    name = StrictCharField(max_length=200)
    description = StrictCharField(max_length=5000, allow_blank=True, default="")
    brand_name = StrictCharField(max_length=100, allow_blank=True, default="")
    price = StrictIntegerField(min_value=0, max_value=MAX_INT64)
    inventory = StrictIntegerField(min_value=0, max_value=MAX_INT64)


class ProductFilterSerializer(serializers.Serializer):
    category_id = serializers.IntegerField(min_value=1, max_value=MAX_INT64, required=False)


class ProductListCreateApi(APIView):
    """GET: products, paginated, `?category_id=` to filter. POST (staff): create one."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(
        parameters=[ProductFilterSerializer],
        responses=ProductOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        products = selectors.product_list(**query_filters(request, ProductFilterSerializer))
        return paginated_response(
            request, self, products, ProductOutputSerializer, item=selectors.product_to_dict
        )

    @extend_schema(request=ProductInputSerializer, responses={201: ProductOutputSerializer})
    def post(self, request: Request) -> Response:
        body = ProductInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        product = services.product_create(**body.validated_data)
        return Response(
            ProductOutputSerializer(selectors.product_to_dict(product)).data,
            status=201,
            headers={"Location": f"/api/v1/products/{product.id}"},
        )


class ProductDetailApi(APIView):
    """GET: one product (through the cache). PUT (staff): replace it; PATCH: change some fields."""

    permission_classes = [IsStaffOrReadOnly]

    def _get(self, product_id: int) -> dict[str, Any]:
        return get_or_404(selectors.product_get(product_id=product_id), f"No product {product_id}.")

    @extend_schema(responses=ProductOutputSerializer)
    def get(self, request: Request, product_id: int) -> Response:
        return Response(ProductOutputSerializer(self._get(product_id)).data)

    def _update(self, request: Request, product_id: int, *, partial: bool) -> Response:
        self._get(product_id)  # 404 before judging the body
        body = ProductInputSerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        product = services.product_update(product_id=product_id, **body.validated_data)
        return Response(ProductOutputSerializer(selectors.product_to_dict(product)).data)

    @extend_schema(request=ProductInputSerializer, responses=ProductOutputSerializer)
    def put(self, request: Request, product_id: int) -> Response:
        return self._update(request, product_id, partial=False)

    @extend_schema(request=ProductInputSerializer, responses=ProductOutputSerializer)
    def patch(self, request: Request, product_id: int) -> Response:
        return self._update(request, product_id, partial=True)
