"""One error type, one JSON shape, one mapping to HTTP and one to gRPC.

Services raise `ApplicationError(ErrorCode.X, "what went wrong", details={...})`
from services, selectors and views. DRF's `exception_handler` below renders it,
and every other error DRF or Django raises, as

    {"error": {"code": "...", "message": "...", "details": {...}}}

gRPC servicers call `abort_grpc(context, error)` with the same error, so a
business rule answers the same code on both surfaces.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from http import HTTPStatus
from typing import Any, NoReturn

import grpc
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    """Stable, machine-readable error codes: clients switch on these, never on messages."""

    INVALID_INPUT = "invalid_input"
    MALFORMED_REQUEST = "malformed_request"
    UNAUTHENTICATED = "unauthenticated"
    TOKEN_EXPIRED = "token_expired"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    CONFLICT = "conflict"
    FAILED_PRECONDITION = "failed_precondition"
    INSUFFICIENT_STOCK = "insufficient_stock"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    URI_TOO_LONG = "uri_too_long"
    HEADERS_TOO_LARGE = "headers_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    THROTTLED = "throttled"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"


# (HTTP status, gRPC status) per code. A business refusal maps to a gRPC code the
# saga compensates on (common.grpc.errors.BUSINESS_CODES); only the truly transient
# ones (THROTTLED, UNAVAILABLE, INTERNAL) map to codes it retries.
_STATUS: dict[ErrorCode, tuple[int, grpc.StatusCode]] = {
    ErrorCode.INVALID_INPUT: (400, grpc.StatusCode.INVALID_ARGUMENT),
    ErrorCode.MALFORMED_REQUEST: (400, grpc.StatusCode.INVALID_ARGUMENT),
    ErrorCode.UNAUTHENTICATED: (401, grpc.StatusCode.UNAUTHENTICATED),
    ErrorCode.TOKEN_EXPIRED: (401, grpc.StatusCode.UNAUTHENTICATED),
    ErrorCode.PERMISSION_DENIED: (403, grpc.StatusCode.PERMISSION_DENIED),
    ErrorCode.NOT_FOUND: (404, grpc.StatusCode.NOT_FOUND),
    ErrorCode.METHOD_NOT_ALLOWED: (405, grpc.StatusCode.UNIMPLEMENTED),
    ErrorCode.NOT_ACCEPTABLE: (406, grpc.StatusCode.INVALID_ARGUMENT),
    ErrorCode.CONFLICT: (409, grpc.StatusCode.ALREADY_EXISTS),
    ErrorCode.FAILED_PRECONDITION: (409, grpc.StatusCode.FAILED_PRECONDITION),
    ErrorCode.INSUFFICIENT_STOCK: (409, grpc.StatusCode.FAILED_PRECONDITION),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, grpc.StatusCode.INVALID_ARGUMENT),
    ErrorCode.URI_TOO_LONG: (414, grpc.StatusCode.INVALID_ARGUMENT),
    ErrorCode.HEADERS_TOO_LARGE: (431, grpc.StatusCode.INVALID_ARGUMENT),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: (415, grpc.StatusCode.INVALID_ARGUMENT),
    ErrorCode.THROTTLED: (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ErrorCode.INTERNAL: (500, grpc.StatusCode.INTERNAL),
    ErrorCode.UNAVAILABLE: (503, grpc.StatusCode.UNAVAILABLE),
}

HTTP_STATUS: dict[ErrorCode, int] = {code: http for code, (http, _) in _STATUS.items()}
GRPC_STATUS: dict[ErrorCode, grpc.StatusCode] = {code: g for code, (_, g) in _STATUS.items()}

GRPC_ERROR_CODE_METADATA = "error-code"
"""Trailing metadata key carrying the ErrorCode of an aborted gRPC call."""
GRPC_RETRY_AFTER_METADATA = "retry-after"
"""Trailing metadata key carrying the seconds to wait, when a refusal says (retry_after)."""


class ApplicationError(Exception):
    """A refusal a client can act on: a code from ErrorCode, a message for people,
    and optional structured details (field errors, ids, retry hints)."""

    def __init__(
        self, code: ErrorCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    @property
    def grpc_status(self) -> grpc.StatusCode:
        return GRPC_STATUS[self.code]

    def as_body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)

    def __repr__(self) -> str:
        return f"ApplicationError({self.code.value!r}, {self.message!r}, {self.details!r})"


def invalid_input(message: str, **details: Any) -> ApplicationError:
    """An INVALID_INPUT refusal (bad input, whatever the state) with its `details`."""
    return ApplicationError(ErrorCode.INVALID_INPUT, message, details)


def error_body(
    code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The one JSON error shape every service answers."""
    return {"error": {"code": code.value, "message": message, "details": details or {}}}


def abort_grpc(context: grpc.ServicerContext, error: ApplicationError) -> NoReturn:
    """End a gRPC call with the status mapped from `error.code` (never returns).

    The ErrorCode travels as trailing metadata `error-code` so a client can tell,
    say, INSUFFICIENT_STOCK from another FAILED_PRECONDITION; a refusal that says when
    to try again (a throttled login) carries the seconds as `retry-after`.
    """
    metadata = [(GRPC_ERROR_CODE_METADATA, error.code.value)]
    if (wait := retry_after(error)) is not None:
        metadata.append((GRPC_RETRY_AFTER_METADATA, wait))
    context.set_trailing_metadata(tuple(metadata))
    context.abort(error.grpc_status, error.message)
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


# DRF's own exceptions, by class, to our codes. Subclasses match their closest parent.
_DRF_CODES: tuple[tuple[type[drf_exceptions.APIException], ErrorCode], ...] = (
    (drf_exceptions.ValidationError, ErrorCode.INVALID_INPUT),
    (drf_exceptions.ParseError, ErrorCode.MALFORMED_REQUEST),
    (drf_exceptions.NotAuthenticated, ErrorCode.UNAUTHENTICATED),
    (drf_exceptions.AuthenticationFailed, ErrorCode.UNAUTHENTICATED),
    (drf_exceptions.PermissionDenied, ErrorCode.PERMISSION_DENIED),
    (drf_exceptions.NotFound, ErrorCode.NOT_FOUND),
    (drf_exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (drf_exceptions.NotAcceptable, ErrorCode.NOT_ACCEPTABLE),
    (drf_exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (drf_exceptions.Throttled, ErrorCode.THROTTLED),
)

_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.INVALID_INPUT: "The request has invalid fields.",
    ErrorCode.NOT_FOUND: "Not found.",
    ErrorCode.PERMISSION_DENIED: "You do not have permission to perform this action.",
    ErrorCode.PAYLOAD_TOO_LARGE: "The request body is too large.",
    ErrorCode.URI_TOO_LONG: "The request URI is too long.",
    ErrorCode.HEADERS_TOO_LARGE: "The request headers are too large.",
    ErrorCode.MALFORMED_REQUEST: "Bad request.",
    ErrorCode.INTERNAL: "Internal server error.",
    ErrorCode.UNAVAILABLE: "The service is not available right now; try again.",
}

# Seconds a client is asked to wait (Retry-After) when a 503 does not say otherwise.
DEFAULT_RETRY_AFTER = 1


class PayloadTooLarge(drf_exceptions.APIException):
    """A request body over settings.DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _MESSAGES[ErrorCode.PAYLOAD_TOO_LARGE]
    default_code = "payload_too_large"


def _plain(detail: Any) -> Any:
    """DRF's ErrorDetail tree as plain JSON values."""
    if isinstance(detail, dict):
        return {str(k): _plain(v) for k, v in detail.items()}
    if isinstance(detail, list | tuple):
        return [_plain(v) for v in detail]
    return str(detail)


def _from_drf(exc: drf_exceptions.APIException) -> ApplicationError:
    code = next(
        (c for cls, c in _DRF_CODES if isinstance(exc, cls)),
        ErrorCode.PAYLOAD_TOO_LARGE if isinstance(exc, PayloadTooLarge) else None,
    )
    detail = exc.detail
    if isinstance(exc, drf_exceptions.ValidationError):
        plain = _plain(detail)
        fields = {"fields": plain} if isinstance(plain, dict) else {"errors": plain}
        return ApplicationError(ErrorCode.INVALID_INPUT, _MESSAGES[ErrorCode.INVALID_INPUT], fields)
    details: dict[str, Any] = {}
    if isinstance(detail, dict):
        # e.g. {"detail": "...", "code": "token_not_valid", "messages": [...]}
        message = str(detail.get("detail", "")) or str(exc.default_detail)
        details = {k: _plain(v) for k, v in detail.items() if k != "detail"}
    elif isinstance(detail, list):
        message = "; ".join(str(d) for d in detail) or str(exc.default_detail)
    else:
        message = str(detail)
    wait = getattr(exc, "wait", None)  # Throttled's seconds until a retry may pass
    if isinstance(exc, drf_exceptions.Throttled) and wait is not None:
        details["retry_after"] = int(wait + 0.999)
    if code is None:  # an APIException subclass of its own: keep its status
        code = _code_for_http_status(exc.status_code)
    return ApplicationError(code, message, details)


def _code_for_http_status(http_status: int) -> ErrorCode:
    for code, http in HTTP_STATUS.items():
        if http == http_status:
            return code
    return ErrorCode.INVALID_INPUT if 400 <= http_status < 500 else ErrorCode.INTERNAL


def to_application_error(exc: BaseException) -> ApplicationError | None:
    """The ApplicationError for any error a request may raise; None for an unexpected one."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, drf_exceptions.APIException):
        return _from_drf(exc)
    if isinstance(exc, Http404):
        return ApplicationError(ErrorCode.NOT_FOUND, _MESSAGES[ErrorCode.NOT_FOUND])
    if isinstance(exc, DjangoPermissionDenied):
        return ApplicationError(ErrorCode.PERMISSION_DENIED, _MESSAGES[ErrorCode.PERMISSION_DENIED])
    if isinstance(exc, RequestDataTooBig):
        return ApplicationError(ErrorCode.PAYLOAD_TOO_LARGE, _MESSAGES[ErrorCode.PAYLOAD_TOO_LARGE])
    if isinstance(exc, OperationalError | InterfaceError):
        # The database went away (a restart, a failover, a killed connection): nothing
        # was committed, Django drops the connection after the request and the next one
        # reconnects. A fault to ride out, not a bug: 503, try again.
        logger.warning("database unavailable: %s", str(exc).strip()[:200])
        return ApplicationError(
            ErrorCode.UNAVAILABLE,
            _MESSAGES[ErrorCode.UNAVAILABLE],
            {"retry_after": DEFAULT_RETRY_AFTER},
        )
    return None


def retry_after(error: ApplicationError) -> str | None:
    """The Retry-After header a refusal carries: a 429 or a 503 says when to try again
    (details.retry_after, else DEFAULT_RETRY_AFTER for a 503)."""
    if error.code is ErrorCode.THROTTLED and "retry_after" in error.details:
        return str(error.details["retry_after"])
    if error.code is ErrorCode.UNAVAILABLE:
        return str(error.details.get("retry_after", DEFAULT_RETRY_AFTER))
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every error, expected or not, in the one JSON shape.

    An unexpected exception is logged with its traceback and answers 500 with a
    generic message: internals never reach the client.
    """
    error = to_application_error(exc)
    if error is None:
        view = context.get("view")
        logger.exception(
            "unhandled error in %s", view.__class__.__name__ if view else "view", exc_info=exc
        )
        error = ApplicationError(ErrorCode.INTERNAL, _MESSAGES[ErrorCode.INTERNAL])
    headers: dict[str, str] = {}
    if isinstance(exc, drf_exceptions.APIException):
        if auth_header := getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = auth_header
        if (wait := getattr(exc, "wait", None)) is not None:
            headers["Retry-After"] = str(int(wait + 0.999))
    if (wait_header := retry_after(error)) is not None:
        headers.setdefault("Retry-After", wait_header)
    if error.http_status == 401 and "WWW-Authenticate" not in headers:
        # DRF adds the challenge only to its own exceptions; add it to ours too.
        view, request = context.get("view"), context.get("request")
        challenge = view.get_authenticate_header(request) if view and request else None
        if challenge:
            headers["WWW-Authenticate"] = challenge
    # Like DRF's own handler: a failed request must not commit half its writes.
    # (Imported here: rest_framework.views imports the authentication classes,
    # which import this module.)
    from rest_framework.views import set_rollback

    if settings.configured:
        set_rollback()
    return Response(error.as_body(), status=error.http_status, headers=headers)


def json_error_response(error: ApplicationError) -> JsonResponse:
    """The one JSON shape for plain Django views (error handlers, middleware)."""
    response = JsonResponse(error.as_body(), status=error.http_status)
    if (wait_header := retry_after(error)) is not None:
        response["Retry-After"] = wait_header
    return response


def json_bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Django's handler400 as JSON; a too-large body (RequestDataTooBig) answers 413."""
    error = to_application_error(exception) if exception is not None else None
    if error is None:
        error = ApplicationError(
            ErrorCode.MALFORMED_REQUEST, _MESSAGES[ErrorCode.MALFORMED_REQUEST]
        )
    return json_error_response(error)


def json_permission_denied(
    request: HttpRequest, exception: Exception | None = None
) -> JsonResponse:
    """Django's handler403 as JSON."""
    return json_error_response(
        ApplicationError(ErrorCode.PERMISSION_DENIED, _MESSAGES[ErrorCode.PERMISSION_DENIED])
    )


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Django's handler404 as JSON (an unknown path under a service's prefix, say)."""
    return json_error_response(
        ApplicationError(ErrorCode.NOT_FOUND, _MESSAGES[ErrorCode.NOT_FOUND])
    )


class DatabaseUnavailableMiddleware:
    """A view outside DRF (an event stream, the admin) that loses its database answers
    503 with Retry-After in the JSON shape, as DRF views do (`exception_handler`),
    instead of Django's 500. Last in MIDDLEWARE: it sees the view's exception first."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> JsonResponse | None:
        if not isinstance(exc, OperationalError | InterfaceError):
            return None
        error = to_application_error(exc)
        assert error is not None
        return json_error_response(error)


def refusal_for_status(http_status: int) -> ApplicationError:
    """The refusal a server in front of Django answers by HTTP status alone: Traefik's
    body limit (413), gunicorn's request line and header limits (414, 431) and its parse
    errors (400). They answer the one JSON shape too, with the fitting code."""
    code = _REFUSALS_BY_STATUS.get(http_status)
    if code is not None:
        return ApplicationError(code, _MESSAGES[code])
    try:
        message = f"{HTTPStatus(http_status).phrase}."
    except ValueError:
        message = "The request was refused."
    return ApplicationError(_code_for_http_status(http_status), message)


# Where two codes share a status, the one a request refused before Django fits.
_REFUSALS_BY_STATUS = {
    400: ErrorCode.MALFORMED_REQUEST,
    403: ErrorCode.PERMISSION_DENIED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    414: ErrorCode.URI_TOO_LONG,
    431: ErrorCode.HEADERS_TOO_LARGE,
    500: ErrorCode.INTERNAL,
}


def json_edge_error(request: HttpRequest, status: int) -> JsonResponse:
    """`/edge-errors/<status>`: the body Traefik's `errors` middleware puts in place of
    its own plain-text refusal (a body over the limit, 413). Not routed by the edge:
    Traefik fetches it from the service directly, and keeps its own status."""
    if not 400 <= status < 600:
        return json_not_found(request)
    return json_error_response(refusal_for_status(status))


def json_server_error(request: HttpRequest) -> JsonResponse:
    """Django's handler500 as JSON; Django has already logged the exception."""
    return json_error_response(ApplicationError(ErrorCode.INTERNAL, _MESSAGES[ErrorCode.INTERNAL]))
