"""common.errors.exception_handler with Django configured (the account service's settings).

Errors the account API cannot easily be made to raise are raised here directly
through a throwaway view; the rest are covered through the edge in accounts/.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.test import RequestFactory
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from common.errors import ApplicationError, DatabaseUnavailableMiddleware, ErrorCode


def _raising(exc: Exception) -> Any:
    class Raising(APIView):
        permission_classes = [AllowAny]

        def get(self, request: Request) -> Response:
            raise exc

    return Raising.as_view()


def _get(exc: Exception) -> Response:
    response: Response = _raising(exc)(APIRequestFactory().get("/x"))
    response.render()
    return response


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (Http404("secret path"), 404, "not_found"),
        (DjangoPermissionDenied(), 403, "permission_denied"),
        (exceptions.PermissionDenied(), 403, "permission_denied"),
        (exceptions.NotFound(), 404, "not_found"),
        (exceptions.ParseError(), 400, "malformed_request"),
        (exceptions.UnsupportedMediaType("text/plain"), 415, "unsupported_media_type"),
        (exceptions.NotAuthenticated(), 401, "unauthenticated"),
        (exceptions.AuthenticationFailed(), 401, "unauthenticated"),
        (
            ApplicationError(ErrorCode.INSUFFICIENT_STOCK, "only 2 left", {"id": 3}),
            409,
            "insufficient_stock",
        ),
    ],
)
def test_each_error_answers_the_one_shape(exc: Exception, status: int, code: str) -> None:
    response = _get(exc)

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert set(response.data) == {"error"}
    assert response.data["error"]["code"] == code
    assert set(response.data["error"]) == {"code", "message", "details"}
    assert "secret path" not in response.content.decode()


def test_validation_errors_list_their_fields() -> None:
    response = _get(exceptions.ValidationError({"email": ["Enter a valid email address."]}))

    assert response.status_code == 400
    assert response.data["error"]["details"] == {
        "fields": {"email": ["Enter a valid email address."]}
    }


def test_throttled_tells_when_to_retry() -> None:
    response = _get(exceptions.Throttled(wait=2.2))

    assert response.status_code == 429
    assert response["Retry-After"] == "3"
    assert response.data["error"]["details"]["retry_after"] == 3


def test_an_unexpected_exception_is_logged_and_answers_a_generic_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="common.errors"):
        response = _get(RuntimeError("database password is hunter2"))

    assert response.status_code == 500
    assert response.data == {
        "error": {"code": "internal", "message": "Internal server error.", "details": {}}
    }
    assert "hunter2" not in response.content.decode()
    assert any("hunter2" in (r.exc_text or "") or r.exc_info for r in caplog.records)


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
    ],
)
def test_a_lost_database_answers_503_with_retry_after_not_500(exc: Exception) -> None:
    response = _get(exc)

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.data["error"]["code"] == "unavailable"
    assert response.data["error"]["details"] == {"retry_after": 1}
    assert "closed" not in response.data["error"]["message"]  # internals stay inside


def test_any_503_says_when_to_retry() -> None:
    response = _get(ApplicationError(ErrorCode.UNAVAILABLE, "the catalog is busy"))
    later = _get(ApplicationError(ErrorCode.UNAVAILABLE, "busy", {"retry_after": 5}))

    assert (response.status_code, response["Retry-After"]) == (503, "1")
    assert (later.status_code, later["Retry-After"]) == (503, "5")


def test_a_view_outside_drf_that_loses_its_database_answers_503_json() -> None:
    def plain_view(request: HttpRequest) -> HttpResponse:
        raise OperationalError("the database system is shutting down")

    middleware = DatabaseUnavailableMiddleware(plain_view)
    request = RequestFactory().get("/x")

    answer = middleware.process_exception(request, OperationalError("shutting down"))
    other = middleware.process_exception(request, RuntimeError("a bug"))

    assert answer is not None and answer.status_code == 503
    assert answer["Retry-After"] == "1"
    assert json.loads(answer.content)["error"]["code"] == "unavailable"
    assert other is None  # a bug stays a 500, logged by Django
