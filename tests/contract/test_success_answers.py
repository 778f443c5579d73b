"""The answers generated requests seldom reach, each checked against its schema once.

Generated requests mostly miss: a random product id does not exist, a random currency is
unknown, so no purchase goes through and no order or payment is there to read. Here a
staff member and a customer walk the happy path, a purchase that completes included, and
every answer is validated by schemathesis against its operation in the service's schema
(status documented, headers and body as described).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from schemathesis.schemas import BaseSchema

from common.testing import Customer, new_email, wait_for
from common.topology import INFRA, SERVICES

FINAL = {"COMPLETED", "FAILED", "NEEDS_ATTENTION"}
# A saga that rides out a restarted participant can take minutes (docs/adr/0015).
FINAL_WITHIN_SECONDS = 180.0
PASSWORD = "contract-tests-Secret-42"


@pytest.fixture(scope="module")
def schemas() -> dict[str, BaseSchema]:
    """Every service's schema, read through the edge."""
    return {
        name: schemathesis.openapi.from_url(
            f"{INFRA.edge_url}{svc.route_prefixes[0]}/schema?format=json", wait_for_schema=30
        )
        for name, svc in SERVICES.items()
    }


class Answers:
    """Requests built from an operation of a schema; each answer must have the expected
    status and keep the schema."""

    def __init__(self, schemas: dict[str, BaseSchema]) -> None:
        self.schemas = schemas

    def __call__(
        self,
        service: str,
        method: str,
        path: str,
        *,
        expect: int,
        token: str | None = None,
        **parts: Any,
    ) -> Any:
        case = self.schemas[service][path][method].Case(**parts)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = case.call(headers=headers)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        case.validate_response(response, headers=headers)
        return response.json() if response.content else None


@pytest.fixture(scope="module")
def answer(schemas: dict[str, BaseSchema]) -> Answers:
    return Answers(schemas)


@pytest.fixture(scope="module")
def product_id(answer: Answers, callers: dict[str, Customer]) -> int:
    """A product in stock, created and changed as staff through the documented answers."""
    staff = callers["staff"].token
    category = answer(
        "product",
        "POST",
        "/api/v1/categories",
        expect=201,
        token=staff,
        body={"name": f"contract {uuid.uuid4().hex[:12]}", "description": "contract"},
    )
    answer(
        "product",
        "PUT",
        "/api/v1/categories/{category_id}",
        expect=200,
        token=staff,
        path_parameters={"category_id": category["id"]},
        body={"name": f"contract {uuid.uuid4().hex[:12]}", "description": "renamed"},
    )
    answer(
        "product",
        "GET",
        "/api/v1/categories/{category_id}",
        expect=200,
        path_parameters={"category_id": category["id"]},
    )
    product = answer(
        "product",
        "POST",
        "/api/v1/products",
        expect=201,
        token=staff,
        body={
            "category_id": category["id"],
            "name": "contract product",
            "description": "",
            "brand_name": "Acme",
            "price": 1390,
            "inventory": 50,
        },
    )
    ids = {"product_id": product["id"]}
    answer(
        "product",
        "PATCH",
        "/api/v1/products/{product_id}",
        expect=200,
        token=staff,
        path_parameters=ids,
        body={"price": 1490},
    )
    answer(
        "product",
        "PUT",
        "/api/v1/products/{product_id}",
        expect=200,
        token=staff,
        path_parameters=ids,
        body={
            "category_id": category["id"],
            "name": "contract product",
            "description": "changed",
            "brand_name": "Acme",
            "price": 1390,
            "inventory": 50,
        },
    )
    answer("product", "GET", "/api/v1/products/{product_id}", expect=200, path_parameters=ids)
    answer(
        "product",
        "GET",
        "/api/v1/products",
        expect=200,
        query={"category_id": category["id"], "page_size": 1},
    )
    return int(product["id"])


def test_an_account_signs_up_in_refreshes_and_out(answer: Answers) -> None:
    email = new_email("contract", "account")
    answer(
        "account",
        "POST",
        "/api/v1/account/auth/register",
        expect=201,
        body={
            "email": email,
            "password": PASSWORD,
            "first_name": "Con",
            "last_name": "Tract",
            "address": "1 Contract Street",
            "phone_number": "0123456788",
        },
    )
    pair = answer(
        "account",
        "POST",
        "/api/v1/account/auth/login",
        expect=200,
        body={"email": email, "password": PASSWORD},
    )
    token = pair["access_token"]
    answer("account", "GET", "/api/v1/account/customer/personal", expect=200, token=token)
    answer(
        "account",
        "PUT",
        "/api/v1/account/customer/personal",
        expect=200,
        token=token,
        body={
            "email": email,
            "first_name": "Con",
            "last_name": "Tracted",
            "phone_number": "0123456788",
        },
    )
    answer("account", "GET", "/api/v1/account/customer/delivery", expect=200, token=token)
    answer(
        "account",
        "PUT",
        "/api/v1/account/customer/delivery",
        expect=200,
        token=token,
        body={"address": "2 Contract Street"},
    )
    rotated = answer(
        "account",
        "POST",
        "/api/v1/account/auth/refresh",
        expect=200,
        body={"refresh_token": pair["refresh_token"]},
    )
    answer(
        "account",
        "POST",
        "/api/v1/account/auth/logout",
        expect=204,
        body={"refresh_token": rotated["refresh_token"]},
    )


def test_a_purchase_and_what_it_leaves_keep_the_contract(
    answer: Answers, callers: dict[str, Customer], product_id: int
) -> None:
    customer, staff = callers["customer"].token, callers["staff"].token
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {
        "order_items": [{"product_id": product_id, "quantity": 2}],
        "payment": {"currency_code": "VND"},
    }
    accepted = answer(
        "purchase", "POST", "/api/v1/purchases", expect=202, token=customer, headers=key, body=body
    )
    replayed = answer(
        "purchase", "POST", "/api/v1/purchases", expect=202, token=customer, headers=key, body=body
    )
    assert replayed == accepted
    ids = {"purchase_id": accepted["id"]}

    def read() -> Any:
        return answer(
            "purchase",
            "GET",
            "/api/v1/purchases/{purchase_id}",
            expect=200,
            token=customer,
            path_parameters=ids,
        )

    purchase = wait_for(read, lambda p: p["status"] in FINAL, within=FINAL_WITHIN_SECONDS)
    assert purchase["status"] == "COMPLETED", purchase

    answer("purchase", "GET", "/api/v1/purchases", expect=200, token=customer)
    order = {"order_id": accepted["id"]}
    answer(
        "order",
        "GET",
        "/api/v1/orders/{order_id}",
        expect=200,
        token=customer,
        path_parameters=order,
    )
    answer("order", "GET", "/api/v1/orders", expect=200, token=customer)
    payment = {"payment_id": accepted["id"]}
    answer(
        "payment",
        "GET",
        "/api/v1/payments/{payment_id}",
        expect=200,
        token=customer,
        path_parameters=payment,
    )
    answer("payment", "GET", "/api/v1/payments", expect=200, token=customer)
    answer(
        "orchestrator",
        "GET",
        "/api/v1/sagas/{purchase_id}",
        expect=200,
        token=staff,
        path_parameters=ids,
    )
    answer(
        "orchestrator",
        "GET",
        "/api/v1/sagas",
        expect=200,
        token=staff,
        query={"customer_id": callers["customer"].id},
    )
