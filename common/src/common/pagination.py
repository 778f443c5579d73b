"""How every service's REST API pages a list: `?page=` and `?page_size=` (20, at most 100).

A list view answers `paginated_response(request, self, rows, OutputSerializer)`: DRF's
`{"count", "next", "previous", "results"}` with one page of `rows`, each first turned
into what the serializer reads by `item` when one is given (a cached dict, say).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PagePagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


def paginated_response(
    request: Request,
    view: APIView,
    rows: Any,
    serializer: type[serializers.BaseSerializer],
    *,
    item: Callable[[Any], Any] | None = None,
) -> Response:
    """One page of `rows` (a queryset or a list) as `serializer` renders it, with the
    links to the pages around it; a page that does not exist answers 404."""
    paginator = PagePagination()
    page: list[Any] = paginator.paginate_queryset(rows, request, view=view) or []
    data = [item(row) for row in page] if item is not None else page
    return paginator.get_paginated_response(serializer(data, many=True).data)
