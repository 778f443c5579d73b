"""The account API through the edge, as a client sees it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from account_svc.tests.conftest import (
    PASSWORD,
    Registered,
    claims_of,
    edge,
    new_email,
    refused_tokens,
    register,
    registration,
)
from common.testing import assert_error
from common.topology import SERVICES

pytestmark = pytest.mark.live

# ------------------------------------------------------------------ success paths


def test_register_answers_a_token_pair_that_opens_the_customer_endpoints() -> None:
    body = registration(email=new_email().upper())

    response = edge("POST", "auth/register", json=body)

    assert response.status_code == 201, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    personal = edge("GET", "customer/personal", token=tokens["access_token"])
    assert personal.status_code == 200, personal.text
    assert personal.json() == {
        "email": body["email"].lower(),
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone_number": "+44 20 7946 0958",
    }
    assert "password" not in personal.text


def test_the_access_token_carries_what_other_services_need(customer: Registered) -> None:
    claims = claims_of(customer.access_token)

    assert claims["user_id"] == str(customer.customer_id)
    assert claims["email"] == customer.email
    assert claims["is_staff"] is False
    assert claims["token_type"] == "access"
    assert 0 < claims["exp"] - claims["iat"] <= 15 * 60
    refresh = claims_of(customer.refresh_token)
    assert refresh["token_type"] == "refresh"
    assert refresh["exp"] - refresh["iat"] >= 24 * 3600


def test_login_with_the_right_password_answers_a_new_pair(customer: Registered) -> None:
    response = edge(
        "POST", "auth/login", json={"email": customer.email.upper(), "password": PASSWORD}
    )

    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["customer_id"] == customer.customer_id
    assert edge("GET", "customer/delivery", token=tokens["access_token"]).status_code == 200


def test_personal_data_can_be_replaced(customer: Registered) -> None:
    changed = {
        "email": new_email("renamed"),
        "first_name": "Augusta",
        "last_name": "King",
        "phone_number": "030 1234567",
    }

    response = edge("PUT", "customer/personal", token=customer.access_token, json=changed)

    assert response.status_code == 200, response.text
    assert response.json() == changed
    assert edge("GET", "customer/personal", token=customer.access_token).json() == changed
    login = edge("POST", "auth/login", json={"email": changed["email"], "password": PASSWORD})
    assert login.status_code == 200, login.text


def test_delivery_address_can_be_replaced(customer: Registered) -> None:
    response = edge(
        "PUT", "customer/delivery", token=customer.access_token, json={"address": "Ockham Park"}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"address": "Ockham Park"}
    got = edge("GET", "customer/delivery", token=customer.access_token)
    assert got.json() == {"address": "Ockham Park"}


def test_the_openapi_schema_and_docs_are_served_under_the_prefix() -> None:
    schema = edge("GET", "schema", params={"format": "json"})
    docs = edge("GET", "docs")

    assert schema.status_code == 200, schema.text
    paths = schema.json()["paths"]
    for path in ("auth/register", "auth/login", "auth/refresh", "auth/logout"):
        assert f"/api/v1/account/{path}" in paths
    assert "bearerAuth" in schema.json()["components"]["securitySchemes"]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# ----------------------------------------------------------------- refresh, logout


def test_refresh_rotates_and_the_old_refresh_token_stops_working(customer: Registered) -> None:
    first = edge("POST", "auth/refresh", json={"refresh_token": customer.refresh_token})
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != customer.refresh_token
    assert edge("GET", "customer/personal", token=rotated["access_token"]).status_code == 200

    again = edge("POST", "auth/refresh", json={"refresh_token": customer.refresh_token})

    assert_error(again, 401, "unauthenticated")
    newer = edge("POST", "auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert newer.status_code == 200, newer.text


def test_logout_revokes_the_refresh_token(customer: Registered) -> None:
    logout = edge("POST", "auth/logout", json={"refresh_token": customer.refresh_token})
    assert logout.status_code == 204, logout.text

    refresh = edge("POST", "auth/refresh", json={"refresh_token": customer.refresh_token})

    assert_error(refresh, 401, "unauthenticated")
    # Logging out twice is fine; a forged token is not.
    assert (
        edge("POST", "auth/logout", json={"refresh_token": customer.refresh_token}).status_code
        == 204
    )
    assert_error(
        edge("POST", "auth/logout", json={"refresh_token": customer.access_token}),
        401,
        "unauthenticated",
    )


def test_an_access_token_is_no_refresh_token(customer: Registered) -> None:
    response = edge("POST", "auth/refresh", json={"refresh_token": customer.access_token})
    assert_error(response, 401, "unauthenticated")


# ------------------------------------------------------------------ authentication


def test_wrong_password_answers_401_and_no_tokens(customer: Registered) -> None:
    response = edge(
        "POST", "auth/login", json={"email": customer.email, "password": "wrong-Password-1"}
    )
    error = assert_error(response, 401, "unauthenticated")
    assert "token" not in json.dumps(error)


def test_an_unknown_email_answers_like_a_wrong_password() -> None:
    response = edge("POST", "auth/login", json={"email": new_email(), "password": PASSWORD})
    assert_error(response, 401, "unauthenticated")


@pytest.mark.parametrize("path", ["customer/personal", "customer/delivery"])
def test_the_customer_endpoints_refuse_bad_tokens_with_401(customer: Registered, path: str) -> None:
    for kind, token in refused_tokens(customer).items():
        response = edge("GET", path, token=token)
        error = assert_error(
            response, 401, "token_expired" if kind == "expired" else "unauthenticated"
        )
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), kind
        assert error["message"], kind
    assert_error(edge("GET", path), 401, "unauthenticated")
    # The genuine token still works: the refusals were about the tokens.
    assert edge("GET", path, token=customer.access_token).status_code == 200


# Endpoints of other services that authenticate with common.auth.JWTAuthentication.
# Any DRF view there refuses a bad Bearer token with 401, whatever its permissions.
OTHER_SERVICE_ENDPOINTS = [("GET", "/api/v1/products"), ("POST", "/api/v1/categories")]


@pytest.mark.parametrize(("method", "path"), OTHER_SERVICE_ENDPOINTS)
def test_another_service_refuses_bad_tokens_with_401(
    customer: Registered, method: str, path: str
) -> None:
    probe = edge(method, path, json={} if method != "GET" else None)
    if probe.status_code == 404:
        pytest.skip(f"{method} {path} is not served yet")
    for kind, token in refused_tokens(customer).items():
        response = edge(method, path, token=token, json={} if method != "GET" else None)
        assert response.status_code == 401, (kind, response.status_code, response.text)


# ------------------------------------------------------------------------ bad input


def _is_taken(email: str) -> bool:
    """Whether an account with `email` exists: a valid registration of it conflicts.
    (If it was free, this registers it, which a later check would see.)"""
    response = edge("POST", "auth/register", json=registration(email=email))
    if response.status_code == 201:
        return False
    assert_error(response, 409, "conflict")
    return True


BAD_REGISTRATIONS: dict[str, Any] = {
    "missing email": lambda b: b.pop("email"),
    "missing password": lambda b: b.pop("password"),
    "missing last name": lambda b: b.pop("last_name"),
    "extra field": lambda b: b.update(is_staff=True),
    "email not a string": lambda b: b.update(email=12345),
    "name not a string": lambda b: b.update(first_name=["Ada"]),
    "phone not a string": lambda b: b.update(phone_number=4420794609),
    "invalid email": lambda b: b.update(email="not-an-email"),
    "weak password": lambda b: b.update(password="12345678"),
    "short password": lambda b: b.update(password="aB3$"),
    "password like the email": lambda b: b.update(password=b["email"]),
    "invalid phone": lambda b: b.update(phone_number="call me maybe"),
    "too few phone digits": lambda b: b.update(phone_number="+1 234"),
    "name too long": lambda b: b.update(first_name="A" * 151),
    "address too long": lambda b: b.update(address="x" * 501),
    "blank name": lambda b: b.update(first_name=""),
}


@pytest.mark.parametrize("case", sorted(BAD_REGISTRATIONS))
def test_a_bad_registration_answers_400_and_writes_nothing(case: str) -> None:
    body = registration()
    email = body["email"]
    BAD_REGISTRATIONS[case](body)

    response = edge("POST", "auth/register", json=body)

    error = assert_error(response, 400, "invalid_input")
    assert error["details"]["fields"], error
    assert not _is_taken(email)


def test_the_field_errors_name_the_fields() -> None:
    unknown = registration(shoe_size=44)
    invalid = registration(email="nope")
    invalid.pop("password")

    unknown_error = assert_error(edge("POST", "auth/register", json=unknown), 400, "invalid_input")
    invalid_error = assert_error(edge("POST", "auth/register", json=invalid), 400, "invalid_input")

    assert set(unknown_error["details"]["fields"]) == {"shoe_size"}
    assert set(invalid_error["details"]["fields"]) == {"email", "password"}


@pytest.mark.parametrize(
    "raw",
    [b'{"email": "a@example.com",', b"not json at all", b'{"email": "\xff"}'],
    ids=["truncated", "not-json", "bad-utf8"],
)
def test_malformed_json_answers_400_json(raw: bytes) -> None:
    response = edge("POST", "auth/register", data=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "malformed_request")


@pytest.mark.parametrize(
    "body", [[], "a string", 42, None], ids=["list", "string", "number", "null"]
)
def test_a_body_that_is_not_an_object_answers_400(body: Any) -> None:
    response = edge(
        "POST", "auth/login", data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_input")


def test_a_body_over_the_size_limit_answers_413_json_and_writes_nothing() -> None:
    body = registration(address="x" * (70 * 1024))

    response = edge("POST", "auth/register", json=body)

    assert_error(response, 413, "payload_too_large")
    assert not _is_taken(body["email"])


def test_a_body_refused_unread_closes_the_connection_so_the_edge_never_reuses_it() -> None:
    # Gunicorn drains at most 64 KiB of an unread body, then drops the connection: had
    # the answer promised keep-alive, Traefik could send the next request into it (502).
    body = registration(address="x" * (70 * 1024))
    url = f"http://127.0.0.1:{SERVICES['account'].http_port}/api/v1/account/auth/register"

    response = requests.post(url, json=body, timeout=10)

    assert_error(response, 413, "payload_too_large")
    assert response.headers["Connection"] == "close"
    small = requests.get(url.replace("auth/register", "healthz"), timeout=10)
    assert small.headers.get("Connection", "keep-alive") == "keep-alive"


def test_a_body_that_is_not_json_answers_415() -> None:
    response = edge(
        "POST",
        "auth/login",
        data="email=a@example.com",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 415, "unsupported_media_type")


def test_a_second_registration_of_an_email_answers_409(customer: Registered) -> None:
    response = edge("POST", "auth/register", json=registration(email=customer.email.upper()))

    error = assert_error(response, 409, "conflict")
    assert "email" in error["details"]["fields"]
    login = edge("POST", "auth/login", json={"email": customer.email, "password": PASSWORD})
    assert login.status_code == 200  # the first account is untouched


def test_changing_the_email_to_a_taken_one_answers_409(customer: Registered) -> None:
    other = register()
    body = {"email": other.email, "first_name": "A", "last_name": "B", "phone_number": "0301234567"}

    response = edge("PUT", "customer/personal", token=customer.access_token, json=body)

    assert_error(response, 409, "conflict")
    personal = edge("GET", "customer/personal", token=customer.access_token).json()
    assert personal["email"] == customer.email


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("customer/personal", {"email": "x@example.com"}),
        ("customer/delivery", {"address": "Here", "city": "There"}),
        ("customer/delivery", {"address": 7}),
        ("customer/delivery", {}),
    ],
)
def test_bad_profile_updates_answer_400_and_change_nothing(
    customer: Registered, path: str, body: dict[str, Any]
) -> None:
    before = edge("GET", path, token=customer.access_token).json()

    assert_error(edge("PUT", path, token=customer.access_token, json=body), 400, "invalid_input")

    assert edge("GET", path, token=customer.access_token).json() == before


def test_unknown_paths_under_the_prefix_answer_json_404() -> None:
    assert_error(edge("GET", "no/such/thing"), 404, "not_found")


def test_a_wrong_method_answers_405_json() -> None:
    assert_error(edge("GET", "auth/login"), 405, "method_not_allowed")
