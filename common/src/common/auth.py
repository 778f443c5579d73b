"""Who is calling: RS256 access tokens verified locally, in every service.

The account service signs access tokens with its private key; every service
verifies them here with the public key: no database read and no network call
per request. The token carries what the other services need to know about the
customer (`user_id`, `email`, `is_staff`), so `request.user` is a `TokenCustomer`
built from the claims, not a row.

Refused with 401: no signature by our key, a changed payload, another algorithm,
a wrong issuer, an expired token, and a refresh token (`token_type` != "access").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from django.conf import settings
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from common import jwt_keys
from common.errors import ApplicationError, ErrorCode

AUTH_HEADER_TYPE = "Bearer"
ACCESS_TOKEN_TYPE = "access"
DEFAULT_ALGORITHM = "RS256"
DEFAULT_ISSUER = "saga-account"


class InvalidTokenError(ApplicationError):
    """The token is not one of ours, was changed, or is not an access token."""

    def __init__(self, message: str = "The access token is invalid.") -> None:
        super().__init__(ErrorCode.UNAUTHENTICATED, message)


class TokenExpiredError(InvalidTokenError):
    """A genuine access token past its `exp`."""

    def __init__(self, claims: TokenClaims) -> None:
        super().__init__("The access token has expired.")
        self.code = ErrorCode.TOKEN_EXPIRED
        self.claims = claims


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims of an access token."""

    customer_id: int
    email: str | None
    is_staff: bool
    jti: str
    expires_at: datetime
    expired: bool = False


@dataclass(frozen=True)
class TokenCustomer:
    """`request.user` of an authenticated request: the customer the token names.

    Quacks enough like a Django user for DRF (permissions, throttles) without a
    database row in the calling service.
    """

    id: int
    email: str | None = None
    is_staff: bool = False
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True

    @property
    def pk(self) -> int:
        return self.id

    @classmethod
    def from_claims(cls, claims: TokenClaims) -> TokenCustomer:
        return cls(id=claims.customer_id, email=claims.email, is_staff=claims.is_staff)

    def __str__(self) -> str:
        return f"customer {self.id}"


def _setting(name: str, default: Any) -> Any:
    # Usable without Django settings too (scripts, unit tests of this module).
    return getattr(settings, name, default) if settings.configured else default


def jwt_algorithm() -> str:
    return str(_setting("JWT_ALGORITHM", DEFAULT_ALGORITHM))


def jwt_issuer() -> str:
    return str(_setting("JWT_ISSUER", DEFAULT_ISSUER))


def jwt_leeway_seconds() -> int:
    return int(_setting("JWT_LEEWAY_SECONDS", 0))


@functools.cache
def _public_key(pem: str) -> Any:
    return jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).prepare_key(pem)


def verify_access_token(token: str, *, allow_expired: bool = False) -> TokenClaims:
    """Verify an access token with the public key and answer its claims.

    Raises InvalidTokenError for anything not a genuine access token, and
    TokenExpiredError (a subclass) for an expired one unless `allow_expired`, in
    which case the answer says `expired=True`: the gRPC Auth call reports expiry
    rather than refusing.
    """
    if not token or not isinstance(token, str):
        raise InvalidTokenError()
    key = _public_key(jwt_keys.public_key_pem())
    leeway = jwt_leeway_seconds()
    options = {"require": ["exp", "iat", "jti", "token_type", "user_id"], "verify_exp": False}
    try:
        payload = jwt.decode(
            token,
            key,
            # Only the one algorithm: a token may not choose how it is checked.
            algorithms=[jwt_algorithm()],
            issuer=jwt_issuer(),
            options=options,  # type: ignore[arg-type]
            leeway=leeway,
        )
    except jwt.PyJWTError:
        raise InvalidTokenError() from None
    if payload.get("token_type") != ACCESS_TOKEN_TYPE:
        raise InvalidTokenError("The token is not an access token.")
    try:
        customer_id = int(payload["user_id"])
        expires_at = datetime.fromtimestamp(int(payload["exp"]), tz=UTC)
    except (TypeError, ValueError):
        raise InvalidTokenError() from None
    email = payload.get("email")
    claims = TokenClaims(
        customer_id=customer_id,
        email=str(email) if email is not None else None,
        is_staff=payload.get("is_staff") is True,
        jti=str(payload["jti"]),
        expires_at=expires_at,
        expired=datetime.now(tz=UTC).timestamp() > expires_at.timestamp() + leeway,
    )
    if claims.expired and not allow_expired:
        raise TokenExpiredError(claims)
    return claims


class JWTAuthentication(BaseAuthentication):
    """DRF authentication by `Authorization: Bearer <access token>`, verified locally.

    No header: anonymous (the view's permissions decide). A header that does not
    carry a valid access token: 401, even on a public endpoint, so a client learns
    its token is bad instead of silently acting anonymously.
    """

    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[TokenCustomer, TokenClaims] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].decode("latin-1").lower() != AUTH_HEADER_TYPE.lower():
            return None  # another scheme (Basic, say): not ours to judge
        if len(header) != 2:
            raise InvalidTokenError("The Authorization header must be 'Bearer <token>'.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise InvalidTokenError() from None
        claims = verify_access_token(token)
        return TokenCustomer.from_claims(claims), claims

    def authenticate_header(self, request: Request) -> str:
        return f'{AUTH_HEADER_TYPE} realm="{self.www_authenticate_realm}"'


def customer_of(request: Request) -> TokenCustomer:
    """The authenticated customer of a request, typed (for views behind IsAuthenticated).

    Raises UNAUTHENTICATED (401) if the request carries no verified access token.
    """
    user = request.user
    if not isinstance(user, TokenCustomer):
        raise ApplicationError(
            ErrorCode.UNAUTHENTICATED, "Authentication credentials were not provided."
        )
    return user
