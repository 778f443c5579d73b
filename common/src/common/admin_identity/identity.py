"""The account service as the admins' identity provider: `auth.AuthService` by gRPC.

Its answers become a `StaffIdentity`; its refusals one of three errors the admin
treats differently: wrong credentials or no staff role (`IdentityRefused`: the admin's
usual login error), a throttled login (`IdentityThrottled`: wait), and no answer at all
(`IdentityUnavailable`: the admin cannot tell who is asking, so it lets nobody in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from django.conf import settings

from common.errors import GRPC_ERROR_CODE_METADATA, GRPC_RETRY_AFTER_METADATA, ErrorCode
from common.grpc.client import stub
from common.grpc.errors import status_code_of
from saga_proto import auth_pb2, auth_pb2_grpc

DEFAULT_TIMEOUT_SECONDS = 3.0
DEFAULT_RETRY_AFTER_SECONDS = 60

# A refusal of this request by the account service; anything else means no answer.
_REFUSALS = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
    }
)


@dataclass(frozen=True)
class StaffIdentity:
    """An account of the account service, with the roles it has there now."""

    customer_id: int
    email: str
    first_name: str = ""
    last_name: str = ""
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False

    @property
    def may_use_admin(self) -> bool:
        return self.is_active and self.is_staff


class IdentityError(Exception):
    """The account service did not answer an identity."""


class IdentityRefused(IdentityError):
    """Wrong email or password, an account without the staff role, or one that is gone."""


class IdentityThrottled(IdentityError):
    """Too many failed logins (docs/adr/0016): try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"throttled for {retry_after}s")
        self.retry_after = retry_after


class IdentityUnavailable(IdentityError):
    """The account service did not answer in time, or could not."""


class IdentitySource(Protocol):
    """Where identities come from: the account service, or a fake in unit tests."""

    def login(self, *, email: str, password: str, client_address: str) -> StaffIdentity:
        """The account these credentials name; raises an IdentityError otherwise."""
        ...

    def roles(self, *, customer_id: int) -> StaffIdentity:
        """The account's current roles; raises an IdentityError otherwise."""
        ...


def _identity(reply: auth_pb2.AdminIdentity) -> StaffIdentity:
    return StaffIdentity(
        customer_id=reply.customer_id,
        email=reply.email,
        first_name=reply.first_name,
        last_name=reply.last_name,
        is_active=reply.is_active,
        is_staff=reply.is_staff,
        is_superuser=reply.is_superuser,
    )


def _trailer(error: grpc.RpcError, key: str) -> str | None:
    trailing_metadata: Any = getattr(error, "trailing_metadata", None)
    found = dict(trailing_metadata() or ()) if callable(trailing_metadata) else {}
    value = found.get(key)
    return str(value) if value is not None else None


def identity_error(error: grpc.RpcError) -> IdentityError:
    """The IdentityError a failed call to the account service means."""
    code = status_code_of(error)
    if code in _REFUSALS:
        return IdentityRefused(code.name if code else "")
    if _trailer(error, GRPC_ERROR_CODE_METADATA) == ErrorCode.THROTTLED.value:
        wait = _trailer(error, GRPC_RETRY_AFTER_METADATA) or ""
        return IdentityThrottled(int(wait) if wait.isdigit() else DEFAULT_RETRY_AFTER_SECONDS)
    return IdentityUnavailable(code.name if code else "no status")


def timeout_seconds() -> float:
    """ADMIN_IDENTITY_TIMEOUT_SECONDS: the deadline of each call to the account service."""
    return float(getattr(settings, "ADMIN_IDENTITY_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


class AccountServiceIdentities:
    """`auth.AuthService` through the gRPC edge, each call with a deadline."""

    def login(self, *, email: str, password: str, client_address: str) -> StaffIdentity:
        request = auth_pb2.AdminLoginRequest(
            email=email, password=password, client_address=client_address
        )
        try:
            reply = stub(auth_pb2_grpc.AuthServiceStub).AdminLogin(
                request, timeout=timeout_seconds()
            )
        except grpc.RpcError as error:
            raise identity_error(error) from None
        return _identity(reply)

    def roles(self, *, customer_id: int) -> StaffIdentity:
        request = auth_pb2.AdminRolesRequest(customer_id=customer_id)
        try:
            reply = stub(auth_pb2_grpc.AuthServiceStub).AdminRoles(
                request, timeout=timeout_seconds()
            )
        except grpc.RpcError as error:
            raise identity_error(error) from None
        return _identity(reply)


def identity_source() -> IdentitySource:
    """The source the backends ask (unit tests replace this function)."""
    return AccountServiceIdentities()
