"""OpenAPI (drf-spectacular) pieces every service shares.

`AutoSchema` is REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS. Importing this module also
registers the extension that documents `common.auth.JWTAuthentication` as an HTTP
bearer scheme; common.urls imports it when it mounts a service's schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse


class AutoSchema(openapi.AutoSchema):
    """Names components of nested serializers after their view.

    With one APIView per operation and nested `InputSerializer`/`OutputSerializer`
    classes (the HackSoft style), every view would otherwise yield a component
    called "Input": `RegisterApi.InputSerializer` becomes "RegisterInput".
    """

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            owner = outer.rsplit(".", 1)[-1].removesuffix("Api").removesuffix("View")
            return owner + inner
        return str(super().get_serializer_name(serializer, direction))


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


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}
"""The one JSON error shape (common.errors), for `extend_schema(responses=...)`."""


class ErrorResponses:
    """The error responses an API documents, each in the one error shape, by HTTP status.

    ERRORS = ErrorResponses({400: "invalid input", 401: "not authenticated"})
    @extend_schema(responses={200: OutputSerializer, **ERRORS(400, 401)})
    """

    def __init__(self, descriptions: Mapping[int, str]) -> None:
        self.responses = {
            code: OpenApiResponse(response=ERROR_SCHEMA, description=text)
            for code, text in descriptions.items()
        }

    def __call__(self, *codes: int) -> dict[int, OpenApiResponse]:
        """The responses of these statuses, for `extend_schema(responses=...)`."""
        return {code: self.responses[code] for code in codes}
