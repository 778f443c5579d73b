"""gRPC auth.AuthService/Auth through the gRPC edge (Traefik routes /auth.AuthService/)."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest

from account_svc.tests.conftest import Registered, refused_tokens, register
from common.errors import GRPC_ERROR_CODE_METADATA
from common.grpc.client import stub
from common.testing import mint_access_token
from saga_proto import auth_pb2, auth_pb2_grpc

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
