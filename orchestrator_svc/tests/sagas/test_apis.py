"""The staff read API: `/api/v1/sagas` and `/api/v1/sagas/{purchase_id}`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, cast

import grpc
import pytest
from rest_framework.test import APIClient

from common.auth import TokenCustomer
from orchestrator_svc.tests.fakes import FakeServices, run_to_rest

pytestmark = pytest.mark.django_db


def client_as(*, staff: bool) -> APIClient:
    client = APIClient()
    # What common.auth.JWTAuthentication puts on the request for a verified token.
    client.force_authenticate(user=cast(Any, TokenCustomer(id=1, is_staff=staff)))
    return client


def test_staff_list_sagas_by_state_and_read_one_with_its_steps(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    failed = start_saga(customer_id=5)
    fake.fail("create_order", grpc.StatusCode.FAILED_PRECONDITION)
    run_to_rest(failed, fake)
    completed = start_saga(customer_id=6)
    run_to_rest(completed, FakeServices())
    staff = client_as(staff=True)

    listed = staff.get("/api/v1/sagas", {"state": "FAILED"})
    mine = staff.get("/api/v1/sagas", {"customer_id": 6})
    one = staff.get(f"/api/v1/sagas/{failed}")

    assert listed.status_code == 200
    assert [s["purchase_id"] for s in listed.json()["results"]] == [failed]
    assert [s["purchase_id"] for s in mine.json()["results"]] == [completed]
    body = one.json()
    assert (body["state"], body["step"], body["customer_id"]) == (
        "FAILED",
        "UPDATE_PRODUCT_INVENTORY",
        5,
    )
    assert [(s["step"], s["status"]) for s in body["steps"]][-3:] == [
        ("CREATE_ORDER", "FAILED"),
        ("CREATE_ORDER", "ROLLBACK"),
        ("UPDATE_PRODUCT_INVENTORY", "ROLLBACK"),
    ]


@pytest.mark.parametrize("purchase_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_saga_answers_404_in_the_error_shape(purchase_id: str) -> None:
    response = client_as(staff=True).get(f"/api/v1/sagas/{purchase_id}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_bad_filter_answers_400() -> None:
    response = client_as(staff=True).get("/api/v1/sagas", {"state": "SLEEPING"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


def test_customers_and_anonymous_callers_are_refused() -> None:
    assert client_as(staff=False).get("/api/v1/sagas").status_code == 403
    assert APIClient().get("/api/v1/sagas").status_code == 401


def test_the_api_schema_is_public() -> None:
    response = APIClient().get("/api/v1/sagas/schema", {"format": "json"})

    assert response.status_code == 200
    assert "/api/v1/sagas/{purchase_id}" in response.json()["paths"]
