"""How every service's REST API pages a list: `?page=` and `?page_size=` (20, at most 100).

A list view answers `paginated_response(request, self, rows, OutputSerializer)`: DRF's
`{"count", "next", "previous", "results"}` with one page of `rows`, each first turned
into what the serializer reads by `item` when one is given (a cached dict, say).
A page that does not exist answers 404; a `page_size` that is not a positive integer
answers 400 (DRF would silently use the default); one over 100 reads as 100.
common.openapi documents every list as this page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PagePagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    page_query_description = "A page number, from 1 (empty: 1); past the last page answers 404."
    page_size_query_description = "Results per page: 20 by default; more than 100 reads as 100."

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        digits = raw.lstrip("0") if re.fullmatch(r"[0-9]+", raw) else ""
        if not digits:
            raise ValidationError({self.page_size_query_param: ["A positive integer."]})
        # (Longer than the cap is over it: no int() of a string of a thousand digits.)
        if len(digits) > len(str(self.max_page_size)):
            return self.max_page_size
        return min(int(digits), self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_query_param:
                parameter["allowEmptyValue"] = True  # DRF reads `?page=` as the first page
        return parameters


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
