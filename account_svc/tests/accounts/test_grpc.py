"""gRPC auth.AuthService through the gRPC edge (Traefik routes /auth.AuthService/): Auth,
and the admins' AdminLogin and AdminRoles."""

from __future__ import annotations

import random
import time
from typing import Any

import grpc
import pytest

from account_svc.tests.conftest import Registered, refused_tokens, register
from common import testing
from common.errors import GRPC_ERROR_CODE_METADATA, GRPC_RETRY_AFTER_METADATA
from common.grpc.client import stub
from common.testing import mint_access_token
from saga_proto import auth_pb2, auth_pb2_grpc

pytestmark = pytest.mark.live

TIMEOUT = 5.0


def auth(token: str) -> auth_pb2.AuthResponse:
    reply: auth_pb2.AuthResponse = stub(auth_pb2_grpc.AuthServiceStub).Auth(
        auth_pb2.AuthRequest(access_token=token), timeout=TIMEOUT
    )
    return reply


def test_a_live_access_token_answers_its_customer_not_expired(customer: Registered) -> None:
    reply = auth(customer.access_token)

    assert reply.customer_id == customer.customer_id
    assert reply.expired is False


def test_an_expired_genuine_token_answers_its_customer_and_expired(customer: Registered) -> None:
    now = int(time.time())
    token = mint_access_token(user_id=str(customer.customer_id), exp=now - 10, iat=now - 910)

    reply = auth(token)

    assert reply.customer_id == customer.customer_id
    assert reply.expired is True


@pytest.mark.parametrize(
    "kind", ["signed with another key", "tampered", "refresh token", "garbage"]
)
def test_a_forged_or_wrong_kind_of_token_answers_unauthenticated(
    customer: Registered, kind: str
) -> None:
    token = refused_tokens(customer)[kind]

    with pytest.raises(grpc.RpcError) as refused:
        auth(token)

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    trailing: Any = refused.value.trailing_metadata() or ()
    metadata = dict(trailing)
    assert metadata.get(GRPC_ERROR_CODE_METADATA) == "unauthenticated"


def test_an_empty_token_answers_unauthenticated() -> None:
    with pytest.raises(grpc.RpcError) as refused:
        auth("")
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_a_token_of_a_customer_that_does_not_exist_answers_unauthenticated() -> None:
    # Signed with the real key, but for an id no registration produced.
    latest = register().customer_id
    with pytest.raises(grpc.RpcError) as refused:
        auth(mint_access_token(user_id=str(latest + 10_000_000)))
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


# ------------------------------------- AdminLogin / AdminRoles (docs/adr/0019)


def admin_login(email: str, password: str, address: str) -> auth_pb2.AdminIdentity:
    reply: auth_pb2.AdminIdentity = stub(auth_pb2_grpc.AuthServiceStub).AdminLogin(
        auth_pb2.AdminLoginRequest(email=email, password=password, client_address=address),
        timeout=TIMEOUT,
    )
    return reply


def admin_roles(customer_id: int) -> auth_pb2.AdminIdentity:
    reply: auth_pb2.AdminIdentity = stub(auth_pb2_grpc.AuthServiceStub).AdminRoles(
        auth_pb2.AdminRolesRequest(customer_id=customer_id), timeout=TIMEOUT
    )
    return reply


def _address() -> str:
    """A client address of this test's own (the throttle counts per address)."""
    return f"198.18.{random.randint(0, 255)}.{random.randint(1, 254)}"


def _refusal(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return refused.value


def test_admin_login_of_a_staff_account_answers_its_identity_and_roles() -> None:
    staff = register()
    testing.grant_staff(staff.email)

    reply = admin_login(staff.email, staff.password, _address())

    assert reply.customer_id == staff.customer_id and reply.email == staff.email
    assert (reply.is_active, reply.is_staff, reply.is_superuser) == (True, True, False)


def test_admin_login_refuses_a_customer_and_a_wrong_password(customer: Registered) -> None:
    address = _address()

    not_staff = _refusal(lambda: admin_login(customer.email, customer.password, address))
    wrong = _refusal(lambda: admin_login(customer.email, "wrong-Password-1", address))

    assert not_staff.code() is grpc.StatusCode.PERMISSION_DENIED
    assert wrong.code() is grpc.StatusCode.UNAUTHENTICATED


def test_admin_login_is_throttled_with_the_wait_in_the_trailer(customer: Registered) -> None:
    address = _address()
    for _ in range(5):  # LOGIN_THROTTLE_PAIR_THRESHOLD
        _refusal(lambda: admin_login(customer.email, "wrong-Password-1", address))

    throttled = _refusal(lambda: admin_login(customer.email, customer.password, address))

    assert throttled.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    trailing: Any = throttled.trailing_metadata() or ()
    metadata = dict(trailing)
    assert metadata[GRPC_ERROR_CODE_METADATA] == "throttled"
    assert 0 < int(metadata[GRPC_RETRY_AFTER_METADATA]) <= 300


def test_admin_roles_follow_grants_and_revocations(customer: Registered) -> None:
    assert admin_roles(customer.customer_id).is_staff is False

    testing.manage("account", "grant_staff", "--superuser", customer.email)
    granted = admin_roles(customer.customer_id)
    testing.manage("account", "grant_staff", "--revoke", customer.email)
    revoked = admin_roles(customer.customer_id)

    assert (granted.is_staff, granted.is_superuser) == (True, True)
    assert (revoked.is_staff, revoked.is_superuser) == (False, False)


def test_admin_roles_of_an_unknown_account_answer_not_found() -> None:
    latest = register().customer_id

    unknown = _refusal(lambda: admin_roles(latest + 10_000_000))

    assert unknown.code() is grpc.StatusCode.NOT_FOUND
