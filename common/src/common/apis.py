"""Helpers for the views of every service (`<app>/apis.py`).

Selectors answer None for a row that is not there (or not the caller's); the view
turns that None into the 404 with `get_or_404`, so every service answers a missing
row the same way: NOT_FOUND in the one JSON error shape of common.errors. A list
view reads its `?filters` with `query_filters`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from rest_framework.request import Request
from rest_framework.serializers import Serializer

from common.errors import ApplicationError, ErrorCode

T = TypeVar("T")


def get_or_404(found: T | None, message: str) -> T:
    """`found` itself, or NOT_FOUND (404) with `message` when a selector answered None.

    Not Django's get_object_or_404: it takes what a selector answered (a row, a cached
    dict), never a model and a lookup, so the read stays in the selector.
    """
    if found is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, message)
    return found


def query_filters(request: Request, serializer_class: type[Serializer]) -> dict[str, Any]:
    """The query parameters of a list view as its filter serializer validates them, ready
    to pass to the selector; INVALID_INPUT (400) with the fields at fault otherwise."""
    filters = serializer_class(data=request.query_params)
    filters.is_valid(raise_exception=True)
    return dict(filters.validated_data)
