"""What every service's schema says of lists and errors, read as a client generator reads it.

test_api_contract.py checks answers against these documents; this module checks the
documents say what the contract promises (docs/adr/0017): a list is a page, every error
is the one error shape, and each operation lists the errors the shared code answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from common.errors import ErrorCode
from common.testing import edge
from common.topology import SERVICES

# The list endpoints, by service: each answers a page (common.pagination).
LISTS = {
    "product": {"/api/v1/categories", "/api/v1/products"},
    "order": {"/api/v1/orders"},
    "payment": {"/api/v1/payments"},
    "purchase": {"/api/v1/purchases"},
    "orchestrator": {"/api/v1/sagas"},
}
PAGE_FIELDS = {"count", "next", "previous", "results"}
ERROR_REF = "#/components/schemas/Error"
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module", params=list(SERVICES))
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A service's OpenAPI document, as the edge serves it."""
    prefix = SERVICES[request.param].route_prefixes[0]
    response = edge("GET", f"{prefix}/schema", params={"format": "json"}, retry=True)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body["x-service"] = request.param
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def json_schema(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The JSON body schema of a response, its $ref resolved; {} without a JSON body."""
    schema: dict[str, Any] = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return {}
    if "$ref" in schema:
        return dict(document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]])
    return schema


def test_no_answer_is_a_bare_array_and_every_list_is_a_page(document: dict[str, Any]) -> None:
    pages = set()
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            schema = json_schema(document, response)
            assert schema.get("type") != "array", f"{method} {path} {status}: a bare array"
            if set(schema.get("properties", {})) == PAGE_FIELDS:
                pages.add(path)
                assert schema["properties"]["results"]["type"] == "array"
                assert set(schema["required"]) == {"count", "results"}
                names = {p["name"] for p in operation["parameters"]}
                assert {"page", "page_size"} <= names, f"{method} {path}: {names}"

    assert pages == LISTS.get(document["x-service"], set())


def test_every_error_answer_is_documented_in_the_one_error_shape(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        where = f"{method} {path}"
        for status, response in responses.items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, f"{where} {status}: {schema}"
        # Every view reads a database: a lost one answers 503, with Retry-After; gunicorn
        # refuses a request line or headers over its limits (414, 431) for any path.
        assert {"414", "431", "503"} <= set(responses), where
        assert "Retry-After" in responses["503"]["headers"], where
        if any("bearerAuth" in requirement for requirement in operation.get("security", [])):
            assert "401" in responses, where
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(responses), where
        if "{" in path:
            assert "404" in responses, where


def test_the_error_shape_is_common_errors(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    assert schemas["Error"]["required"] == ["error"]
    body = schemas["ErrorBody"]
    assert set(body["required"]) == {"code", "message", "details"}
    assert set(schemas["ErrorCodeEnum"]["enum"]) == {code.value for code in ErrorCode}


def test_a_body_with_fields_the_service_refuses_is_documented_as_closed(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        body = operation.get("requestBody")
        if body:
            schema = json_schema(document, body)
            assert schema.get("additionalProperties") is False, f"{method} {path}"


def test_each_operation_has_one_path_without_a_trailing_slash(document: dict[str, Any]) -> None:
    # The order, payment and saga routes take an optional slash: one path is documented.
    assert [path for path in document["paths"] if path.endswith("/")] == []
