"""OpenAPI (drf-spectacular) pieces every service shares: the contract its answers keep.

`AutoSchema` is REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS. It documents, for every
operation of every service, what the shared code really answers:

- a list is the page `common.pagination.paginated_response` answers
  (`{"count", "next", "previous", "results"}`, `?page=` and `?page_size=`);
- the errors the shared machinery can answer, each in the one error shape
  (`Error`, common.errors): 400 for a body or a query parameter, 401 where a token is
  read, 403 where a role is needed, 404 for a path id or a page, 413 and 415 for a
  body, 429 where a throttle runs; everywhere 503 (with Retry-After), since every view
  reads a database, and 414 and 431, gunicorn's refusals of a request line or headers
  over its limits (common.gunicorn_conf). A view declares with `extend_schema` only
  the errors of its own rules (a 409 conflict, say), or a better description of one;
- a read that needs no token says so (`{}` among its security requirements);
- an input serializer that refuses unknown fields (common.serializers.StrictSerializer)
  says so (`additionalProperties: false`), and an optional filter that an empty value
  filters nothing (`allowEmptyValue`);
- `canonical_paths` (PREPROCESSING_HOOKS) documents one path per operation.

Importing this module also registers the extension that documents
`common.auth.JWTAuthentication` as an HTTP bearer scheme; common.urls imports it when it
mounts a service's schema. docs/adr/0017-api-contract.md records the decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import uritemplate
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers
from rest_framework.pagination import BasePagination

from common.errors import ErrorCode
from common.pagination import PagePagination
from common.permissions import IsStaffOrReadOnly
from common.serializers import StrictSerializer

# ------------------------------------------------------------------ the error shape


ERROR_CODES = [code.value for code in ErrorCode]
"""The error codes, named ErrorCodeEnum in the schema (SPECTACULAR_SETTINGS)."""


class ErrorBodySerializer(serializers.Serializer):
    """What went wrong: a stable code to switch on, a message for people, and details
    (`fields` for invalid input, `retry_after` for a 429 or a 503, ...)."""

    code = serializers.ChoiceField(choices=ERROR_CODES)
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorSerializer(serializers.Serializer):
    """The one JSON error shape every service answers (common.errors)."""

    error = ErrorBodySerializer()


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
PAGE_PARAMETERS = frozenset({PagePagination.page_query_param, PagePagination.page_size_query_param})
RETRY_AFTER = "Retry-After"

# The errors shared code answers, and when (see `AutoSchema.error_statuses`).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input: the body or a query parameter (details.fields says which).",
    401: "No access token, or one that is invalid or expired.",
    403: "The account lacks the role this needs (staff).",
    404: "No such resource, or not yours; for a list, no such page.",
    413: "The body is over the size limit.",
    414: "The request line (path and query) is over the server's limit.",
    415: "The body is not JSON (Content-Type).",
    429: "Too many requests: try again after Retry-After seconds.",
    431: "The request headers are over the server's limit.",
    503: "Briefly unavailable (a database or a service this one calls), nothing written:"
    " try again after Retry-After seconds.",
}


class ErrorResponses:
    """A view's own error responses, each in the one error shape, by HTTP status: the
    ones its own rules answer, or a better description of a shared one.

    ERRORS = ErrorResponses({404: "no such order of yours", 409: "name taken"})
    @extend_schema(responses={200: OutputSerializer, **ERRORS(404, 409)})
    """

    def __init__(self, descriptions: Mapping[int, str]) -> None:
        self.responses = {
            code: OpenApiResponse(response=ErrorSerializer, description=text)
            for code, text in descriptions.items()
        }

    def __call__(self, *codes: int) -> dict[int, OpenApiResponse]:
        """The responses of these statuses, for `extend_schema(responses=...)`."""
        return {code: self.responses[code] for code in codes}


# ------------------------------------------------------------------ the schema class


class AutoSchema(openapi.AutoSchema):
    """The project's schema class: pages, shared errors and optional tokens (see the
    module docstring), and components of nested serializers named after their view."""

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        # With one APIView per operation and nested `InputSerializer`/`OutputSerializer`
        # classes (the HackSoft style), every view would otherwise yield a component
        # called "Input": `RegisterApi.InputSerializer` becomes "RegisterInput".
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            owner = outer.rsplit(".", 1)[-1].removesuffix("Api").removesuffix("View")
            return owner + inner
        return str(super().get_serializer_name(serializer, direction))

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        if isinstance(serializer, StrictSerializer) and direction == "request":
            schema["additionalProperties"] = False  # it refuses unknown fields (400)
        return schema

    def _get_paginator(self) -> BasePagination | None:
        # Our list views are APIViews that page with `paginated_response`, which always
        # uses PagePagination; spectacular only asks (for a list) what the view declares.
        paginator: BasePagination | None = super()._get_paginator()
        return paginator if paginator is not None else PagePagination()

    def get_auth(self) -> list[dict[str, Any]]:
        auths: list[dict[str, Any]] = super().get_auth()
        if {} not in auths and self._anonymous_allowed():
            auths.append({})  # the token is optional here
        return auths

    def _anonymous_allowed(self) -> bool:
        perms = self.view.get_permissions()
        return all(
            isinstance(p, IsStaffOrReadOnly) and self.method in permissions.SAFE_METHODS
            for p in perms
        )

    def error_statuses(self) -> set[int]:
        """The error statuses this operation can answer through the shared code."""
        # Every view reads a database (common.errors: a lost one is 503), and gunicorn
        # refuses a request line or headers over its limits before Django sees them.
        statuses = {414, 431, 503}
        if self.method in BODY_METHODS:
            statuses |= {400, 413, 415}  # common.parsers and the input serializers
        if self._filters():
            statuses.add(400)  # a filter that fails validation
        if uritemplate.variables(self.path):
            statuses.add(404)  # no such id (or not yours)
        if self._is_paginated_list():
            statuses |= {400, 404}  # a wrong `?page_size=`; no such `?page=`
        if self.view.get_authenticators():
            statuses.add(401)  # a token that is not ours, expired, or none where needed
        if any(self._can_forbid(p) for p in self.view.get_permissions()):
            statuses.add(403)
        if self.view.throttle_classes:
            statuses.add(429)
        return statuses

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._get_parameters()
        filters = self._filter_names(parameters)
        for parameter in parameters:
            if parameter["name"] in filters and not parameter.get("required"):
                # `?status=` filters nothing: DRF reads an empty optional query value
                # as absent (as from an HTML form), and so do the views that read their own.
                parameter["allowEmptyValue"] = True
        return parameters

    def _filters(self) -> set[str]:
        return self._filter_names(super()._get_parameters())

    def _filter_names(self, parameters: list[dict[str, Any]]) -> set[str]:
        """The query parameters that filter a read: neither a page's nor a credential."""
        return {
            p["name"]
            for p in parameters
            if p["in"] == "query"
            and p["name"] not in PAGE_PARAMETERS
            and p["name"] not in self._credential_parameters()
        }

    def _credential_parameters(self) -> set[str]:
        """Query parameters that carry a token (the event stream's `?access_token=`)."""
        names = set()
        for authenticator in self.view.get_authenticators():
            scheme = OpenApiAuthenticationExtension.get_match(authenticator)
            if scheme is None:
                continue
            definitions = scheme.get_security_definition(self)
            for definition in definitions if isinstance(definitions, list) else [definitions]:
                if definition.get("in") == "query":
                    names.add(str(definition["name"]))
        return names

    def _is_paginated_list(self) -> bool:
        return self.method == "GET" and self._is_list_view()

    def _can_forbid(self, permission: object) -> bool:
        """Whether `permission` can refuse an authenticated caller (403): any but these.
        (Tuples, not `A | B`: DRF's permission classes overload `|` to combine them.)"""
        if isinstance(permission, (permissions.AllowAny, permissions.IsAuthenticated)):
            return False
        return not (
            isinstance(permission, (IsStaffOrReadOnly, permissions.IsAuthenticatedOrReadOnly))
            and self.method in permissions.SAFE_METHODS
        )

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code in sorted(self.error_statuses()):
            if str(code) not in responses:
                error = OpenApiResponse(ErrorSerializer, ERROR_DESCRIPTIONS[code])
                responses[str(code)] = self._get_response_for_code(error, str(code))
        for retried in ("429", "503"):
            if retried in responses:
                responses[retried].setdefault("headers", {})[RETRY_AFTER] = {
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "Seconds to wait before trying again.",
                }
        return dict(sorted(responses.items()))


def canonical_paths(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """PREPROCESSING_HOOK: one documented path per operation, without a trailing slash.

    A route whose slash is optional (`^api/v1/orders/?$`) is documented as spectacular
    reads its regex, with the slash; one routed twice (with and without) twice. A client
    needs the one canonical path: the one without.
    """
    routed = {(path, method) for path, _, method, _ in endpoints}
    canonical = []
    for path, regex, method, callback in endpoints:
        if path.endswith("/") and len(path) > 1:
            bare = path.rstrip("/")
            if (bare, method) in routed:
                continue  # the same operation, routed with a slash too
            if regex.endswith("/?$"):
                path = bare
        canonical.append((path, regex, method, callback))
    return canonical


class JWTBearerScheme(OpenApiAuthenticationExtension):
    target_class = "common.auth.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: openapi.AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An RS256 access token from POST /api/v1/account/auth/login.",
        }
