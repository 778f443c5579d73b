"""The catalog's REST routes, under the prefixes the edge sends to this service.

Ids are digits only; one too long for a bigint answers 404 like any id that does
not exist (never a database error).
"""

from __future__ import annotations

from django.urls import path, register_converter
from django.urls.converters import IntConverter

from product_svc.catalog import apis


class IdConverter(IntConverter):
    regex = "[0-9]{1,20}"


register_converter(IdConverter, "id")

urlpatterns = [
    path("api/v1/categories", apis.CategoryListCreateApi.as_view(), name="category-list"),
    path(
        "api/v1/categories/<id:category_id>",
        apis.CategoryDetailApi.as_view(),
        name="category-detail",
    ),
    path("api/v1/products", apis.ProductListCreateApi.as_view(), name="product-list"),
    path("api/v1/products/<id:product_id>", apis.ProductDetailApi.as_view(), name="product-detail"),
]
