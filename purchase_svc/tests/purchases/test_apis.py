"""The purchase REST API in-process: validation, creation, idempotency, reads.

ProductService is the stand-in gRPC server of conftest (`products`); everything else
is real: the test database, the outbox table, the JWT verification.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import grpc
import pytest
from django.test import Client, override_settings

from common.contract.events import PurchaseResult, PurchaseStatus, Step, StepStatus
from common.contract.topics import Topic
from common.outbox.models import OutboxMessage
from common.testing import assert_error
from purchase_svc.purchases import services
from purchase_svc.purchases.models import Purchase
from purchase_svc.tests.conftest import (
    Customer,
    FakeCatalog,
    mint_access_token,
    purchase_body,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/purchases"


def post(client: Client, customer: Customer, body: Any, **headers: str) -> Any:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        URL, raw, content_type="application/json", headers={**customer.auth, **headers}
    )


def assert_nothing_written() -> None:
    assert not Purchase.objects.exists()
    assert not OutboxMessage.objects.exists()


# ------------------------------------------------------------------ POST: accepted


def test_a_purchase_is_accepted_priced_and_announced_in_one_go(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    whey, bar = products.add(1, price=1390), products.add(2, price=250)

    response = post(client, customer, purchase_body((whey, 2), (bar, 3)))

    assert response.status_code == 202, response.content
    body = response.json()
    purchase_id = body["id"]
    assert body == {
        "id": purchase_id,
        "status": "PENDING",
        "amount": 2 * 1390 + 3 * 250,
        "currency_code": "VND",
        "links": {
            "self": f"{URL}/{purchase_id}",
            "events": f"{URL}/{purchase_id}/events",
            "cancel": f"{URL}/{purchase_id}/cancel",
        },
    }
    assert response.headers["Location"] == f"{URL}/{purchase_id}"
    purchase = Purchase.objects.get(id=purchase_id)
    assert purchase.customer_id == customer.id
    assert purchase.status == "PENDING"
    assert purchase.items == [
        {"product_id": whey, "quantity": 2, "unit_price": 1390},
        {"product_id": bar, "quantity": 3, "unit_price": 250},
    ]
    outbox = OutboxMessage.objects.get()
    assert (outbox.topic, outbox.key) == (Topic.PURCHASE, purchase_id)
    assert outbox.payload == {
        "purchase_id": purchase_id,
        "customer_id": customer.id,
        "items": [  # the stand-in catalog answers no names
            {"product_id": whey, "quantity": 2, "unit_price": 1390, "name": ""},
            {"product_id": bar, "quantity": 3, "unit_price": 250, "name": ""},
        ],
        "amount": 3530,
        "currency_code": "VND",
    }


def test_duplicate_product_lines_are_merged(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    whey, bar = products.add(1, price=100), products.add(2, price=7)

    response = post(client, customer, purchase_body((whey, 1), (bar, 1), (whey, 2)))

    assert response.status_code == 202, response.content
    assert response.json()["amount"] == 307
    assert Purchase.objects.get().items == [
        {"product_id": whey, "quantity": 3, "unit_price": 100},
        {"product_id": bar, "quantity": 1, "unit_price": 7},
    ]
    assert products.calls == [[(whey, 3), (bar, 1)]]


def test_not_enough_stock_is_left_to_the_saga(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    scarce = products.add(1, price=100, inventory=1)

    response = post(client, customer, purchase_body((scarce, 5)))

    assert response.status_code == 202, response.content
    assert OutboxMessage.objects.count() == 1


# ------------------------------------------------------------------ POST: refused


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "order_items"),
        ({"order_items": [], "payment": {"currency_code": "VND"}}, "order_items"),
        ({"order_items": [{"product_id": 1, "quantity": 0}], "payment": {"currency_code": "VND"}},
         "order_items"),
        ({"order_items": [{"product_id": 1, "quantity": -2}], "payment": {"currency_code": "VND"}},
         "order_items"),
        ({"order_items": [{"product_id": 1, "quantity": 1001}],
          "payment": {"currency_code": "VND"}}, "order_items"),
        ({"order_items": [{"product_id": 0, "quantity": 1}], "payment": {"currency_code": "VND"}},
         "order_items"),
        ({"order_items": [{"product_id": "1", "quantity": 1}],
          "payment": {"currency_code": "VND"}}, "order_items"),
        ({"order_items": [{"product_id": 1, "quantity": 1.5}],
          "payment": {"currency_code": "VND"}}, "order_items"),
        ({"order_items": [{"product_id": 1, "quantity": True}],
          "payment": {"currency_code": "VND"}}, "order_items"),
        ({"order_items": [{"product_id": 1}], "payment": {"currency_code": "VND"}}, "order_items"),
        ({"order_items": [{"product_id": 1, "quantity": 1, "price": 1}],
          "payment": {"currency_code": "VND"}}, "order_items"),
        ({"order_items": [{"product_id": 1, "quantity": 1}]}, "payment"),
        ({"order_items": [{"product_id": 1, "quantity": 1}], "payment": {}}, "payment"),
        ({"order_items": [{"product_id": 1, "quantity": 1}], "payment": {"currency_code": "ABC"}},
         "payment"),
        ({"order_items": [{"product_id": 1, "quantity": 1}], "payment": {"currency_code": "vnd"}},
         "payment"),
        ({"order_items": [{"product_id": 1, "quantity": 1}], "payment": {"currency_code": 704}},
         "payment"),
        ({"order_items": [{"product_id": 1, "quantity": 1}],
          "payment": {"currency_code": "VND", "amount": 1}}, "payment"),
        ({"order_items": [{"product_id": 1, "quantity": 1}], "payment": {"currency_code": "VND"},
          "customer_id": 1}, "customer_id"),
        ({"order_items": {"product_id": 1, "quantity": 1}, "payment": {"currency_code": "VND"}},
         "order_items"),
    ],
)  # fmt: skip
def test_invalid_bodies_answer_400_and_write_nothing(
    client: Client, customer: Customer, products: FakeCatalog, body: Any, field: str
) -> None:
    products.add(1, price=100)

    error = assert_error(post(client, customer, body), 400, "invalid_input")

    assert field in error["details"]["fields"], error
    assert_nothing_written()
    assert products.calls == []


@override_settings(PURCHASE_MAX_LINES=3)
def test_more_lines_than_allowed_answer_400(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    for product_id in range(1, 5):
        products.add(product_id, price=1)

    response = post(client, customer, purchase_body(*[(p, 1) for p in range(1, 5)]))

    assert "order_items" in assert_error(response, 400, "invalid_input")["details"]["fields"]
    assert_nothing_written()


def test_merged_lines_over_the_quantity_limit_answer_400(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=1)

    response = post(client, customer, purchase_body((1, 600), (1, 600)))

    assert "order_items" in assert_error(response, 400, "invalid_input")["details"]["fields"]
    assert_nothing_written()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', "null", ""])
def test_a_body_that_is_not_a_json_object_answers_400(
    client: Client, customer: Customer, products: FakeCatalog, raw: str
) -> None:
    response = post(client, customer, raw)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("malformed_request", "invalid_input")
    assert_nothing_written()


def test_a_body_that_is_not_json_answers_415(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    response = client.post(URL, "order_items=1", content_type="text/plain", headers=customer.auth)

    assert_error(response, 415, "unsupported_media_type")
    assert_nothing_written()


def test_an_unknown_product_answers_404_naming_it(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)

    response = post(client, customer, purchase_body((1, 1), (404, 1), (405, 2)))

    error = assert_error(response, 404, "not_found")
    assert error["details"] == {"product_ids": [404, 405]}
    assert_nothing_written()


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN]
)
def test_a_failing_product_service_answers_503_try_again(
    client: Client, customer: Customer, products: FakeCatalog, code: grpc.StatusCode
) -> None:
    products.add(1, price=100)
    products.fail_with = code

    response = post(client, customer, purchase_body((1, 1)))

    assert_error(response, 503, "unavailable")
    assert response.headers["Retry-After"] == "1"
    assert_nothing_written()


@override_settings(PURCHASE_PRODUCT_CHECK_TIMEOUT_SECONDS=0.2)
def test_a_slow_product_service_answers_503(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)
    products.delay = 0.6

    assert_error(post(client, customer, purchase_body((1, 1))), 503, "unavailable")
    assert_nothing_written()


def test_an_unreachable_product_service_answers_503(client: Client, customer: Customer) -> None:
    with override_settings(GRPC_EDGE_TARGET="127.0.0.1:9"):  # discard port: nobody listens
        response = post(client, customer, purchase_body((1, 1)))

    assert_error(response, 503, "unavailable")
    assert_nothing_written()


def test_an_anonymous_or_bad_token_answers_401(client: Client, products: FakeCatalog) -> None:
    products.add(1, price=1)
    body = json.dumps(purchase_body((1, 1)))

    anonymous = client.post(URL, body, content_type="application/json")
    forged = client.post(
        URL,
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {mint_access_token(1, token_type='refresh')}"},
    )

    assert_error(anonymous, 401, "unauthenticated")
    assert_error(forged, 401, "unauthenticated")
    assert_nothing_written()


# ------------------------------------------------------------------ Idempotency-Key


def test_the_same_key_answers_the_first_response_and_creates_nothing_new(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)
    body = purchase_body((1, 2))

    first = post(client, customer, body, **{"Idempotency-Key": "order-42"})
    Purchase.objects.update(status="COMPLETED")  # the saga moved on meanwhile
    again = post(client, customer, body, **{"Idempotency-Key": "order-42"})

    assert first.status_code == again.status_code == 202
    assert again.content == first.content  # byte for byte, though the status moved on
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert Purchase.objects.count() == 1
    assert OutboxMessage.objects.count() == 1
    assert len(products.calls) == 1


def test_key_order_and_whitespace_do_not_make_another_request(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)
    first = post(client, customer, purchase_body((1, 2)), **{"Idempotency-Key": "k"})

    again = post(
        client,
        customer,
        '{ "payment": {"currency_code": "VND"},\n'
        ' "order_items": [{"quantity": 2, "product_id": 1}]}',
        **{"Idempotency-Key": "k"},
    )

    assert again.json() == first.json()
    assert Purchase.objects.count() == 1


def test_the_same_key_with_another_body_answers_422(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)
    post(client, customer, purchase_body((1, 2)), **{"Idempotency-Key": "order-42"})

    response = post(client, customer, purchase_body((1, 3)), **{"Idempotency-Key": "order-42"})

    error = assert_error(response, 422, "conflict")
    assert error["details"]["reason"] == "idempotency_key_reused"
    assert Purchase.objects.count() == 1


def test_keys_are_per_customer_and_without_a_key_each_post_creates_one(
    client: Client, customer: Customer, other_customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)
    body = purchase_body((1, 1))

    mine = post(client, customer, body, **{"Idempotency-Key": "same"})
    theirs = post(client, other_customer, body, **{"Idempotency-Key": "same"})
    unkeyed = [post(client, customer, body) for _ in range(2)]

    ids = {r.json()["id"] for r in (mine, theirs, *unkeyed)}
    assert len(ids) == 4
    assert Purchase.objects.count() == 4


def test_a_refused_request_does_not_bind_its_key(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    key = {"Idempotency-Key": "retry-me"}
    assert post(client, customer, purchase_body((1, 1)), **key).status_code == 404
    products.add(1, price=100)

    response = post(client, customer, purchase_body((1, 1)), **key)

    assert response.status_code == 202
    assert Purchase.objects.get().idempotency_key == "retry-me"


@pytest.mark.parametrize("key", ["", "   ", "x" * 129, "naïve"])
def test_an_invalid_idempotency_key_answers_400(
    client: Client, customer: Customer, products: FakeCatalog, key: str
) -> None:
    products.add(1, price=100)

    response = post(client, customer, purchase_body((1, 1)), **{"Idempotency-Key": key})

    assert_error(response, 400, "invalid_input")
    assert_nothing_written()


def test_a_key_of_128_characters_is_accepted(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)

    response = post(client, customer, purchase_body((1, 1)), **{"Idempotency-Key": "k" * 128})

    assert response.status_code == 202


# ------------------------------------------------------------------ GET one, GET list


def _record(purchase_id: str, sequence: int, step: Step, status: StepStatus, **kw: Any) -> None:
    services.purchase_step_record(
        message_id=f"m-{uuid.uuid4().hex}",
        result=PurchaseResult(purchase_id, step, status, sequence=sequence, **kw),
    )


def test_a_purchase_answers_its_status_items_and_steps_in_order(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)
    purchase_id = post(client, customer, purchase_body((1, 2))).json()["id"]
    _record(purchase_id, 2, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.SUCCESS)
    _record(purchase_id, 1, Step.UPDATE_PRODUCT_INVENTORY, StepStatus.EXECUTE)
    _record(
        purchase_id,
        3,
        Step.CREATE_ORDER,
        StepStatus.FAILED,
        purchase_status=PurchaseStatus.PENDING,
        attempt=3,
        error="order service said no",
    )

    response = client.get(f"{URL}/{purchase_id}", headers=customer.auth)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == purchase_id
    assert (body["status"], body["amount"], body["currency_code"]) == ("PENDING", 200, "VND")
    assert body["items"] == [{"product_id": 1, "quantity": 2, "unit_price": 100}]
    assert body["links"]["events"] == f"{URL}/{purchase_id}/events"
    steps = [(s["sequence"], s["step"], s["status"]) for s in body["steps"]]
    assert steps == [
        (1, "UPDATE_PRODUCT_INVENTORY", "EXECUTE"),
        (2, "UPDATE_PRODUCT_INVENTORY", "SUCCESS"),
        (3, "CREATE_ORDER", "FAILED"),
    ]
    assert body["steps"][2]["attempt"] == 3
    assert body["steps"][2]["error"] == "order service said no"
    assert body["steps"][0]["at"].endswith("Z")


def test_a_purchase_waiting_on_a_retry_says_which_step_why_and_until_when(
    client: Client, customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)
    purchase_id = post(client, customer, purchase_body((1, 1))).json()["id"]
    _record(purchase_id, 1, Step.CREATE_PAYMENT, StepStatus.EXECUTE)
    _record(
        purchase_id,
        2,
        Step.CREATE_PAYMENT,
        StepStatus.RETRY,
        attempt=1,
        error="UNAVAILABLE: payment is down",
        retry_at="2026-12-07T10:00:05+00:00",
    )

    body = client.get(f"{URL}/{purchase_id}", headers=customer.auth).json()

    assert body["status"] == "PENDING"
    assert body["waiting"] == {
        "step": "CREATE_PAYMENT",
        "reason": "UNAVAILABLE: payment is down",
        "attempt": 1,
        "next_attempt_at": "2026-12-07T10:00:05Z",
    }
    assert body["steps"][-1]["retry_at"] == "2026-12-07T10:00:05Z"
    assert body["steps"][0]["retry_at"] is None

    # The call is made again and succeeds: nothing is waited for any more.
    _record(purchase_id, 3, Step.CREATE_PAYMENT, StepStatus.EXECUTE, attempt=2)
    body = client.get(f"{URL}/{purchase_id}", headers=customer.auth).json()
    assert body["waiting"] is None


def test_another_customers_purchase_answers_404_and_anonymous_401(
    client: Client, customer: Customer, other_customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)
    purchase_id = post(client, customer, purchase_body((1, 1))).json()["id"]

    for path in (f"{URL}/{purchase_id}", f"{URL}/{purchase_id}/events"):
        assert_error(client.get(path, headers=other_customer.auth), 404, "not_found")
        assert_error(client.get(path), 401, "unauthenticated")
    assert_error(client.get(f"{URL}/{uuid.uuid4()}", headers=customer.auth), 404, "not_found")
    assert_error(client.get(f"{URL}/not-a-uuid", headers=customer.auth), 404, "not_found")


def test_the_list_shows_only_mine_newest_first_paginated_and_filtered(
    client: Client, customer: Customer, other_customer: Customer, products: FakeCatalog
) -> None:
    products.add(1, price=100)
    mine = [post(client, customer, purchase_body((1, n))).json()["id"] for n in range(1, 4)]
    post(client, other_customer, purchase_body((1, 1)))
    Purchase.objects.filter(id=mine[0]).update(status="COMPLETED")

    page1 = client.get(f"{URL}?page_size=2", headers=customer.auth).json()
    page2 = client.get(f"{URL}?page_size=2&page=2", headers=customer.auth).json()
    completed = client.get(f"{URL}?status=COMPLETED", headers=customer.auth).json()

    assert page1["count"] == 3
    assert [p["id"] for p in page1["results"] + page2["results"]] == mine[::-1]
    assert [p["id"] for p in completed["results"]] == [mine[0]]
    assert set(page1["results"][0]) >= {"id", "status", "amount", "items", "links", "created_at"}
    assert_error(client.get(f"{URL}?status=DONE", headers=customer.auth), 400, "invalid_input")
    assert_error(client.get(URL), 401, "unauthenticated")


def test_the_openapi_schema_describes_every_endpoint(client: Client) -> None:
    response = client.get(f"{URL}/schema?format=json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {URL, f"{URL}/{{purchase_id}}", f"{URL}/{{purchase_id}}/events"} <= set(paths)
