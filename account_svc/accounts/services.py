"""Writes of the account service: customers, credentials and tokens."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from account_svc.accounts import login_clients, selectors
from account_svc.accounts.models import Customer, normalize_email
from account_svc.accounts.throttling import (
    LoginAttempt,
    login_failure_record,
    login_success_record,
    login_throttle_check,
)
from common.errors import ApplicationError, ErrorCode

logger = logging.getLogger(__name__)

REFRESH_TOKEN_TYPE = "refresh"


@dataclass(frozen=True)
class TokenPair:
    customer_id: int
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


def _email_taken() -> ApplicationError:
    return ApplicationError(
        ErrorCode.CONFLICT,
        "An account with this email already exists.",
        {"fields": {"email": ["An account with this email already exists."]}},
    )


def _check_password_strength(password: str, customer: Customer) -> None:
    try:
        validate_password(password, user=cast(Any, customer))
    except ValidationError as exc:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT,
            "The request has invalid fields.",
            {"fields": {"password": list(exc.messages)}},
        ) from None


def customer_register(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    address: str = "",
    phone_number: str = "",
) -> Customer:
    """Create a customer with a hashed password; a taken email answers CONFLICT.

    Validates the password's strength before any write. Two simultaneous
    registrations of one email race to the database's unique constraint: one
    wins, the other answers CONFLICT.
    """
    customer = Customer(
        email=normalize_email(email),
        first_name=first_name,
        last_name=last_name,
        address=address,
        phone_number=phone_number,
    )
    _check_password_strength(password, customer)
    customer.set_password(password)
    try:
        with transaction.atomic():
            customer.save(force_insert=True)
    except IntegrityError:
        raise _email_taken() from None
    logger.info("customer %s registered", customer.pk)
    return customer


def _customer_claims(customer: Customer) -> dict[str, Any]:
    """What the other services read from an access token instead of asking us."""
    return {"email": customer.email, "is_staff": customer.is_staff}


def token_pair_issue(*, customer: Customer) -> TokenPair:
    """A new refresh token (recorded as outstanding) and its access token."""
    refresh = RefreshToken.for_user(customer)
    for claim, value in _customer_claims(customer).items():
        refresh[claim] = value
    access = refresh.access_token
    return TokenPair(
        customer_id=customer.pk,
        access_token=str(access),
        refresh_token=str(refresh),
        expires_in=int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    )


@dataclass(frozen=True)
class SignIn:
    """A successful login: the token pair, and the device token that marks the client
    as the owner's (the value of the login-device cookie)."""

    pair: TokenPair
    device_token: str


def login_client_trust(*, email: str, client_ip: str | None, device_token: str | None) -> str:
    """Remember a client the owner signed in from (registration or login): its address,
    and answer its device token for this account, renewed (same device) or new."""
    email = normalize_email(email)
    if client_ip:
        login_clients.address_remember(email=email, address=client_ip)
    device_id = login_clients.device_id_from(email=email, token=device_token)
    return login_clients.device_token_issue(email=email, device_id=device_id)


def customer_login(
    *, email: str, password: str, client_ip: str | None, device_token: str | None = None
) -> SignIn:
    """Check the credentials and answer a token pair and the client's device token.

    Wrong email or password answer the same UNAUTHENTICATED; repeated failures answer
    THROTTLED for a while, keyed so that guessers do not lock the owner out (see
    throttling). `device_token` is the client's login-device cookie, if any.
    """
    email = normalize_email(email)
    attempt = LoginAttempt(
        email=email,
        address=client_ip,
        device_id=login_clients.device_id_from(email=email, token=device_token),
    )
    customer = _throttled_credentials_check(attempt=attempt, password=password)
    return SignIn(
        pair=token_pair_issue(customer=customer),
        device_token=login_client_trust(
            email=email, client_ip=client_ip, device_token=device_token
        ),
    )


def _throttled_credentials_check(*, attempt: LoginAttempt, password: str) -> Customer:
    """The active customer these credentials name, counted by the login throttle; wrong
    ones answer UNAUTHENTICATED, and THROTTLED while the attempt's limits are reached."""
    login_throttle_check(attempt=attempt)
    # ModelBackend itself, not django's authenticate(): the admin's backend
    # (admin_auth) calls this function, and must not be called back. ModelBackend
    # hashes even for an unknown email, so timing tells nothing.
    customer = ModelBackend().authenticate(None, username=attempt.email, password=password)
    if not isinstance(customer, Customer):
        login_failure_record(attempt=attempt)
        raise ApplicationError(ErrorCode.UNAUTHENTICATED, "Wrong email or password.")
    login_success_record(attempt=attempt)
    return customer


def staff_login(*, email: str, password: str, client_ip: str | None) -> Customer:
    """Check an admin login (any service's admin, docs/adr/0019): the staff account
    these credentials name. Throttled as the API's login is, on the same counters
    (docs/adr/0016); right credentials of an account without the staff role answer
    PERMISSION_DENIED, after the throttle has counted them as a success."""
    attempt = LoginAttempt(email=normalize_email(email), address=client_ip)
    customer = _throttled_credentials_check(attempt=attempt, password=password)
    if not customer.is_staff:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Not a staff account.")
    return customer


def _invalid_refresh() -> ApplicationError:
    return ApplicationError(
        ErrorCode.UNAUTHENTICATED, "The refresh token is invalid, expired or revoked."
    )


def _verified_refresh_payload(refresh_token: str) -> dict[str, Any]:
    """The payload of a refresh token we signed and that has not expired."""
    try:
        payload: dict[str, Any] = token_backend.decode(cast(Any, refresh_token), verify=True)
    except TokenBackendError:
        raise _invalid_refresh() from None
    if payload.get(jwt_settings.TOKEN_TYPE_CLAIM) != REFRESH_TOKEN_TYPE:
        raise _invalid_refresh()
    return payload


def _lock_outstanding(payload: dict[str, Any]) -> OutstandingToken:
    """The outstanding row of a refresh token, locked until the transaction ends."""
    outstanding = (
        OutstandingToken._default_manager.select_for_update(of=("self",))
        .filter(jti=payload[jwt_settings.JTI_CLAIM])
        .order_by()  # the model's default ordering joins the (nullable) user
        .first()
    )
    if outstanding is None:  # signed by us but never issued here: refuse
        raise _invalid_refresh()
    return outstanding


@transaction.atomic
def token_pair_refresh(*, refresh_token: str) -> TokenPair:
    """Rotate: revoke the presented refresh token and answer a new pair.

    The new access token carries the customer's current claims (a staff grant
    shows after the next refresh). The row lock makes rotation exactly-once: of
    two simultaneous refreshes with one token, the second finds it revoked.
    """
    payload = _verified_refresh_payload(refresh_token)
    outstanding = _lock_outstanding(payload)
    if BlacklistedToken._default_manager.filter(token=outstanding).exists():
        raise _invalid_refresh()
    BlacklistedToken._default_manager.create(token=outstanding)
    customer = selectors.customer_get_active(customer_id=int(payload["user_id"]))
    if customer is None:
        raise _invalid_refresh()
    return token_pair_issue(customer=customer)


@transaction.atomic
def token_revoke(*, refresh_token: str) -> None:
    """Logout: revoke a refresh token. Revoking a revoked token succeeds (idempotent)."""
    payload = _verified_refresh_payload(refresh_token)
    outstanding = _lock_outstanding(payload)
    BlacklistedToken._default_manager.get_or_create(token=outstanding)


def customer_personal_update(
    *, customer: Customer, email: str, first_name: str, last_name: str, phone_number: str
) -> Customer:
    """Replace the customer's personal data; an email another account has answers CONFLICT."""
    customer.email = normalize_email(email)
    customer.first_name = first_name
    customer.last_name = last_name
    customer.phone_number = phone_number
    try:
        with transaction.atomic():
            customer.save(
                update_fields=["email", "first_name", "last_name", "phone_number", "updated_at"]
            )
    except IntegrityError:
        raise _email_taken() from None
    return customer


def customer_delivery_update(*, customer: Customer, address: str) -> Customer:
    """Replace the customer's delivery address."""
    customer.address = address
    customer.save(update_fields=["address", "updated_at"])
    return customer


def customer_staff_set(*, email: str, is_staff: bool = True, superuser: bool = False) -> Customer:
    """Grant (or revoke) the staff role; the access token shows it after the next
    login or refresh. `superuser` also opens every page of the admin."""
    customer = selectors.customer_get_by_email(email=email)
    if customer is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, f"No account with email {email!r}.")
    customer.is_staff = is_staff
    fields = ["is_staff", "updated_at"]
    if superuser or not is_staff:
        customer.is_superuser = superuser and is_staff
        fields.append("is_superuser")
    customer.save(update_fields=fields)
    return customer
