"""The mismatches between schemas and answers that schemathesis found, each pinned down
here with a request that shows it (docs/adr/0017 lists them): generated requests find
them by chance, these find them every time.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.testing import Customer, assert_error, edge


def schema_of(prefix: str) -> dict[str, Any]:
    response = edge("GET", f"{prefix}/schema", params={"format": "json"}, retry=True)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def request_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    schema: dict[str, Any] = document["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]
    return schema


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "1.5", ""])
def test_a_page_size_that_is_not_a_positive_integer_is_refused(page_size: str) -> None:
    # DRF would answer the default page size instead: the schema says minimum 1.
    response = edge("GET", "/api/v1/products", params={"page_size": page_size}, retry=True)

    error = assert_error(response, 400, "invalid_input")
    assert set(error["details"]["fields"]) == {"page_size"}


def test_a_page_size_over_the_cap_reads_as_the_cap() -> None:
    response = edge("GET", "/api/v1/products", params={"page_size": "9" * 40}, retry=True)

    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) <= 100


def test_an_empty_filter_filters_nothing(callers: dict[str, Customer]) -> None:
    # Documented as allowEmptyValue: DRF reads `?state=` as no filter at all.
    staff = callers["staff"]
    everything = edge("GET", "/api/v1/sagas", token=staff.token, retry=True)
    empty = edge("GET", "/api/v1/sagas", token=staff.token, params={"state": ""}, retry=True)

    assert empty.status_code == 200, empty.text
    assert empty.json()["count"] >= everything.json()["count"]


def test_a_field_longer_than_its_max_length_is_refused_whatever_its_tail(
    callers: dict[str, Customer],
) -> None:
    # DRF trimmed the whitespace first: "x" and 255 trailing blanks passed a 255-long field.
    path = "/api/v1/account/customer/delivery"
    schema = request_schema(schema_of("/api/v1/account"), "put", path)
    limit = schema["properties"]["address"]["maxLength"]

    response = edge(
        "PUT",
        path,
        token=callers["customer"].token,
        json={"address": "x" + " " * limit},
        retry=True,
    )

    error = assert_error(response, 400, "invalid_input")
    assert set(error["details"]["fields"]) == {"address"}


def test_a_category_name_taken_answers_the_documented_409(callers: dict[str, Customer]) -> None:
    staff = callers["staff"]
    body = {"name": f"contract {uuid.uuid4().hex[:12]}", "description": "taken"}
    first = edge("POST", "/api/v1/categories", token=staff.token, json=body, retry=True)
    second = edge("POST", "/api/v1/categories", token=staff.token, json=body, retry=True)

    assert first.status_code == 201, first.text
    assert_error(second, 409, "conflict")
    documented = schema_of("/api/v1/products")["paths"]["/api/v1/categories"]["post"]
    assert "409" in documented["responses"]
