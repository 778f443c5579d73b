"""An admin request whose roles the account service cannot confirm answers 503."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, JsonResponse

from common.admin_identity.identity import IdentityUnavailable
from common.errors import ApplicationError, ErrorCode, json_error_response

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class IdentityUnavailableMiddleware:
    """The backend's `get_user` raises IdentityUnavailable when the account service
    does not answer: the page answers 503 with Retry-After in the JSON error shape
    (as a lost database does, common.errors.DatabaseUnavailableMiddleware), not 500,
    and lets nobody in meanwhile."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> JsonResponse | None:
        if not isinstance(exc, IdentityUnavailable):
            return None
        logger.warning("admin roles unavailable from the account service: %s", exc)
        return json_error_response(
            ApplicationError(
                ErrorCode.UNAVAILABLE,
                "The account service, which confirms every admin's roles, is not"
                " answering; try again in a moment.",
                {"retry_after": RETRY_AFTER_SECONDS},
            )
        )
