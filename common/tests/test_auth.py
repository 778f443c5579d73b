"""common.auth: RS256 access tokens verified locally, without Django settings or a database.

Given a key pair made for the test (the public key handed over as JWT_PUBLIC_KEY),
tokens are minted here as the account service mints them, then presented to
JWTAuthentication the way DRF does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common import jwt_keys
from common.auth import (
    DEFAULT_ISSUER,
    InvalidTokenError,
    JWTAuthentication,
    TokenCustomer,
    TokenExpiredError,
    verify_access_token,
)
from common.errors import ErrorCode
from common.permissions import IsStaff, IsStaffOrReadOnly
from common.testing import mint_access_token


def _pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


OUR_PRIVATE, OUR_PUBLIC = _pem_pair()
OTHER_PRIVATE, _ = _pem_pair()


@pytest.fixture(autouse=True)
def our_public_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("JWT_PUBLIC_KEY", OUR_PUBLIC)
    jwt_keys.clear_cache()
    yield
    jwt_keys.clear_cache()


def mint(private_key: str = OUR_PRIVATE, algorithm: str = "RS256", **overrides: Any) -> str:
    claims = {"user_id": "42", "email": "ann@example.com", "iss": DEFAULT_ISSUER, **overrides}
    return mint_access_token(private_key=private_key, algorithm=algorithm, **claims)


class FakeRequest:
    """What JWTAuthentication reads of a DRF request: its headers."""

    def __init__(self, authorization: str | None = None, method: str = "GET") -> None:
        self.headers = {"authorization": authorization} if authorization else {}
        self.method = method


def authenticate(authorization: str | None) -> Any:
    return JWTAuthentication().authenticate(FakeRequest(authorization))  # type: ignore[arg-type]


def test_a_valid_access_token_authenticates_its_customer_from_the_claims_alone() -> None:
    user, claims = authenticate(f"Bearer {mint(is_staff=True)}")

    assert user == TokenCustomer(id=42, email="ann@example.com", is_staff=True)
    assert user.is_authenticated and not user.is_anonymous and user.pk == 42
    assert claims.customer_id == 42 and claims.expired is False


def test_no_authorization_header_leaves_the_request_anonymous() -> None:
    assert authenticate(None) is None


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(f"Bearer {mint(exp=int(time.time()) - 5)}", id="expired"),
        pytest.param(f"Bearer {mint(private_key=OTHER_PRIVATE)}", id="signed-with-another-key"),
        pytest.param(f"Bearer {mint(token_type='refresh')}", id="refresh-token"),
        pytest.param(f"Bearer {mint(iss='someone-else')}", id="another-issuer"),
        pytest.param(f"Bearer {mint(user_id=None)}", id="no-customer"),
        pytest.param(f"Bearer {mint(user_id='not-a-number')}", id="customer-not-a-number"),
        pytest.param(f"Bearer {mint(exp=None)}", id="no-expiry"),
        pytest.param("Bearer not.a.jwt", id="garbage"),
        pytest.param("Bearer", id="no-token"),
        pytest.param("Bearer a b", id="two-tokens"),
    ],
)
def test_a_token_that_is_not_a_genuine_live_access_token_is_refused(header: str) -> None:
    with pytest.raises(InvalidTokenError) as refused:
        authenticate(header)

    assert refused.value.http_status == 401


def test_a_tampered_payload_breaks_the_signature() -> None:
    header, payload, signature = mint().split(".")
    forged_claims = jwt.utils.base64url_decode(payload).replace(b'"42"', b'"43"')
    forged = ".".join([header, jwt.utils.base64url_encode(forged_claims).decode(), signature])

    with pytest.raises(InvalidTokenError):
        authenticate(f"Bearer {forged}")


def test_a_symmetric_token_made_with_the_public_key_as_secret_is_refused() -> None:
    # The classic algorithm-confusion attack: HS256 keyed with the (public) PEM.
    genuine_claims = jwt.decode(mint(), options={"verify_signature": False})
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(genuine_claims).encode())
    signing_input = header + b"." + payload
    signature = hmac.new(OUR_PUBLIC.encode(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + jwt.utils.base64url_encode(signature)).decode()

    with pytest.raises(InvalidTokenError):
        authenticate(f"Bearer {forged}")


def test_expiry_is_reported_when_asked_instead_of_refused() -> None:
    token = mint(exp=int(time.time()) - 5)

    with pytest.raises(TokenExpiredError) as refused:
        verify_access_token(token)
    claims = verify_access_token(token, allow_expired=True)

    assert refused.value.code is ErrorCode.TOKEN_EXPIRED
    assert claims.expired is True and claims.customer_id == 42


def test_another_authorization_scheme_is_left_to_other_authenticators() -> None:
    assert authenticate("Basic dXNlcjpwYXNz") is None


def test_the_challenge_names_the_bearer_scheme() -> None:
    header = JWTAuthentication().authenticate_header(FakeRequest())  # type: ignore[arg-type]
    assert header.startswith("Bearer ")


def test_a_missing_public_key_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("JWT_PUBLIC_KEY")
    monkeypatch.setenv("JWT_PUBLIC_KEY_FILE", str(tmp_path / "absent.pem"))
    jwt_keys.clear_cache()

    with pytest.raises(jwt_keys.KeyNotConfigured):
        verify_access_token(mint())


class FakeUserRequest:
    def __init__(self, user: Any, method: str) -> None:
        self.user = user
        self.method = method


@pytest.mark.parametrize(
    ("user", "method", "is_staff_allows", "read_only_allows"),
    [
        (None, "GET", False, True),
        (None, "POST", False, False),
        (TokenCustomer(id=1), "GET", False, True),
        (TokenCustomer(id=1), "PUT", False, False),
        (TokenCustomer(id=1, is_staff=True), "POST", True, True),
        (TokenCustomer(id=1, is_staff=True), "DELETE", True, True),
    ],
)
def test_staff_permissions(
    user: Any, method: str, is_staff_allows: bool, read_only_allows: bool
) -> None:
    request: Any = FakeUserRequest(user, method)
    assert IsStaff().has_permission(request, None) is is_staff_allows
    assert IsStaffOrReadOnly().has_permission(request, None) is read_only_allows


def test_customer_of_answers_the_token_customer_or_401() -> None:
    from common.auth import customer_of
    from common.errors import ApplicationError

    ann = TokenCustomer(id=7, email="ann@example.com")
    assert customer_of(FakeUserRequest(ann, "GET")) is ann  # type: ignore[arg-type]
    with pytest.raises(ApplicationError, match="credentials"):
        customer_of(FakeUserRequest(None, "GET"))  # type: ignore[arg-type]
