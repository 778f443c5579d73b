"""common.admin_identity.identity: what each answer of the account service means to an admin.

A refusal of the login (wrong credentials, no staff role, an account gone) is the admin's
usual login error; a throttled login waits as long as the service says; anything else is
an account service that did not answer, and lets nobody in.
"""

from __future__ import annotations

import grpc
import pytest

from common.admin_identity.identity import (
    DEFAULT_RETRY_AFTER_SECONDS,
    IdentityRefused,
    IdentityThrottled,
    IdentityUnavailable,
    StaffIdentity,
    identity_error,
)
from common.errors import GRPC_ERROR_CODE_METADATA, GRPC_RETRY_AFTER_METADATA


class FailedCall(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, trailer: dict[str, str] | None = None) -> None:
        self._code, self._trailer = code, trailer or {}

    def code(self) -> grpc.StatusCode:
        return self._code

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._trailer.items())


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
    ],
)
def test_a_refusal_of_the_request_is_the_usual_login_error(code: grpc.StatusCode) -> None:
    assert isinstance(identity_error(FailedCall(code)), IdentityRefused)


def test_a_throttled_login_waits_as_long_as_the_service_says() -> None:
    error = identity_error(
        FailedCall(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            {GRPC_ERROR_CODE_METADATA: "throttled", GRPC_RETRY_AFTER_METADATA: "17"},
        )
    )
    unsaid = identity_error(
        FailedCall(grpc.StatusCode.RESOURCE_EXHAUSTED, {GRPC_ERROR_CODE_METADATA: "throttled"})
    )

    assert isinstance(error, IdentityThrottled) and error.retry_after == 17
    assert isinstance(unsaid, IdentityThrottled)
    assert unsaid.retry_after == DEFAULT_RETRY_AFTER_SECONDS


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,  # without the throttle's trailer: the edge's
    ],
)
def test_no_answer_is_the_account_service_unavailable(code: grpc.StatusCode) -> None:
    assert isinstance(identity_error(FailedCall(code)), IdentityUnavailable)


def test_only_an_active_staff_account_may_use_the_admin() -> None:
    assert StaffIdentity(customer_id=1, email="a@example.com", is_staff=True).may_use_admin
    assert not StaffIdentity(customer_id=1, email="a@example.com").may_use_admin
    assert not StaffIdentity(
        customer_id=1, email="a@example.com", is_staff=True, is_active=False
    ).may_use_admin
