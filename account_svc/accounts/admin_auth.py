"""The account admin's login: the same check as the other five admins' (docs/adr/0019).

The other services ask this one by gRPC (`AdminLogin`, `services.staff_login`); here the
admin calls the service function itself, on the customers' own table, so all six logins
are throttled alike (docs/adr/0016) and refuse customers alike. The session's user is
read from the table on each request (ModelBackend.get_user): a revoked role shows at once.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from account_svc.accounts import services
from common.admin_identity.backends import client_address
from common.admin_identity.identity import DEFAULT_RETRY_AFTER_SECONDS, IdentityThrottled
from common.errors import ApplicationError, ErrorCode


class StaffLoginBackend(ModelBackend):
    """ModelBackend whose login is `services.staff_login` (throttled, staff only)."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not username or password is None:
            return None
        try:
            return services.staff_login(
                email=username, password=password, client_ip=client_address(request) or None
            )
        except ApplicationError as error:
            if error.code is ErrorCode.THROTTLED:
                wait = error.details.get("retry_after", DEFAULT_RETRY_AFTER_SECONDS)
                raise IdentityThrottled(int(wait)) from None
            return None  # wrong credentials, or not staff: the admin's usual error
