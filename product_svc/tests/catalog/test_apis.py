"""The catalog's REST API, through the edge, against the running service."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from common.testing import assert_error, edge, edge_inventory, eventually

pytestmark = pytest.mark.live

Maker = Callable[..., dict[str, Any]]

PRODUCT_KEYS = {
    "id",
    "category_id",
    "name",
    "description",
    "brand_name",
    "price",
    "inventory",
    "created_at",
    "updated_at",
}


# ------------------------------------------------------------------ categories


def test_staff_creates_a_category_and_anyone_reads_it(staff: str) -> None:
    name = f"whey {uuid.uuid4().hex[:8]}"

    created = edge(
        "POST",
        "/api/v1/categories",
        token=staff,
        json={"name": name, "description": "whey protein"},
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert isinstance(body["id"], int)
    assert body["name"] == name and body["description"] == "whey protein"
    assert created.headers["Location"] == f"/api/v1/categories/{body['id']}"
    read = edge("GET", f"/api/v1/categories/{body['id']}")
    assert read.status_code == 200
    assert read.json()["name"] == name


def test_staff_renames_a_category(staff: str, make_category: Maker) -> None:
    category = make_category()
    new_name = f"renamed {uuid.uuid4().hex[:8]}"

    updated = edge(
        "PUT",
        f"/api/v1/categories/{category['id']}",
        token=staff,
        json={"name": new_name, "description": "new words"},
    )

    assert updated.status_code == 200, updated.text
    read = edge("GET", f"/api/v1/categories/{category['id']}").json()
    assert (read["name"], read["description"]) == (new_name, "new words")


def test_category_list_is_paginated(make_category: Maker) -> None:
    made = [make_category()["id"] for _ in range(3)]

    first = edge("GET", "/api/v1/categories", params={"page_size": 2}).json()

    assert first["count"] >= 3
    assert len(first["results"]) == 2
    assert first["next"]
    ids: list[int] = []
    page = 1
    while True:
        body = edge("GET", "/api/v1/categories", params={"page_size": 100, "page": page}).json()
        ids += [c["id"] for c in body["results"]]
        if not body["next"]:
            break
        page += 1
    assert set(made) <= set(ids)
    assert ids == sorted(ids)


def test_a_category_name_is_unique(staff: str, make_category: Maker) -> None:
    category = make_category()

    again = edge("POST", "/api/v1/categories", token=staff, json={"name": category["name"]})

    error = assert_error(again, 409, "conflict")
    assert "name" in error["details"]["fields"]


# -------------------------------------------------------------------- products


def test_staff_creates_a_product_and_anyone_reads_it_with_its_inventory(
    staff: str, make_category: Maker
) -> None:
    category = make_category()
    body = {
        "category_id": category["id"],
        "name": "Whey Protein Isolate",
        "description": "100% Whey Protein Isolate",
        "brand_name": "OstroVit",
        "price": 1390,
        "inventory": 1000,
    }

    created = edge("POST", "/api/v1/products", token=staff, json=body)

    assert created.status_code == 201, created.text
    product = created.json()
    assert set(product) == PRODUCT_KEYS
    assert {k: product[k] for k in body} == body
    assert created.headers["Location"] == f"/api/v1/products/{product['id']}"
    read = edge("GET", f"/api/v1/products/{product['id']}")  # no token: reads are public
    assert read.status_code == 200
    assert read.json() == product


def test_staff_replaces_a_product_and_the_next_read_shows_it(
    staff: str, make_product: Maker, make_category: Maker
) -> None:
    product = make_product(price=100, inventory=5)
    assert edge_inventory(product["id"]) == 5  # now cached
    other = make_category()
    replacement = {
        "category_id": other["id"],
        "name": "Whey Protein Professional",
        "description": "100% Whey Protein Professional",
        "brand_name": "Scitec Nutrition",
        "price": 3780,
        "inventory": 1000,
    }

    updated = edge("PUT", f"/api/v1/products/{product['id']}", token=staff, json=replacement)

    assert updated.status_code == 200, updated.text
    assert {k: updated.json()[k] for k in replacement} == replacement

    def read() -> dict[str, Any]:
        body = edge("GET", f"/api/v1/products/{product['id']}").json()
        return {k: body[k] for k in replacement}

    assert eventually(read, replacement) == replacement


def test_staff_patches_some_fields_of_a_product(staff: str, make_product: Maker) -> None:
    product = make_product(price=100, inventory=5)

    patched = edge("PATCH", f"/api/v1/products/{product['id']}", token=staff, json={"price": 250})

    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["price"], body["inventory"], body["name"]) == (250, 5, product["name"])


def test_product_list_is_paginated_and_filtered_by_category(
    make_product: Maker, make_category: Maker
) -> None:
    category = make_category()
    made = [make_product(category_id=category["id"])["id"] for _ in range(3)]
    make_product()  # another category

    first = edge(
        "GET", "/api/v1/products", params={"category_id": category["id"], "page_size": 2}
    ).json()
    second = edge(
        "GET",
        "/api/v1/products",
        params={"category_id": category["id"], "page_size": 2, "page": 2},
    ).json()

    assert first["count"] == 3
    assert [p["id"] for p in first["results"] + second["results"]] == made
    assert second["next"] is None
    assert set(first["results"][0]) == PRODUCT_KEYS
    everything = edge("GET", "/api/v1/products").json()
    assert everything["count"] > 3


def test_a_product_reads_the_same_alone_and_in_the_list_times_included(
    make_product: Maker, make_category: Maker
) -> None:
    category = make_category()
    made = make_product(category_id=category["id"])

    alone = edge("GET", f"/api/v1/products/{made['id']}").json()  # from the cache's dict
    listed = edge("GET", "/api/v1/products", params={"category_id": category["id"]}).json()

    assert listed["results"] == [alone]  # the serializer's output: one time format
    assert alone["created_at"].endswith("Z") and alone["updated_at"].endswith("Z")


# ------------------------------------------------------------ who may write


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/categories"),
        ("POST", "/api/v1/products"),
        ("PUT", "/api/v1/products/1"),
        ("PUT", "/api/v1/categories/1"),
    ],
)
def test_writes_need_a_token(method: str, path: str) -> None:
    assert_error(edge(method, path, json={"name": "x"}), 401, "unauthenticated")


def test_writes_need_the_staff_role(customer: str, make_product: Maker) -> None:
    product = make_product()

    create = edge("POST", "/api/v1/categories", token=customer, json={"name": "nope"})
    update = edge("PATCH", f"/api/v1/products/{product['id']}", token=customer, json={"price": 1})

    assert_error(create, 403, "permission_denied")
    assert_error(update, 403, "permission_denied")
    assert edge("GET", f"/api/v1/products/{product['id']}").json()["price"] == product["price"]


def test_a_bad_token_is_refused_even_for_a_read(make_product: Maker) -> None:
    product = make_product()

    read = edge("GET", f"/api/v1/products/{product['id']}", token="not-a-token")

    assert_error(read, 401, "unauthenticated")


# ------------------------------------------------------------------ bad input


def _product_body(category: int, **fields: Any) -> dict[str, Any]:
    return {
        "category_id": category,
        "name": "n",
        "description": "d",
        "brand_name": "b",
        "price": 1,
        "inventory": 1,
        **fields,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": -1}, "price"),
        ({"inventory": -1}, "inventory"),
        ({"price": "12"}, "price"),
        ({"inventory": 1.5}, "inventory"),
        ({"price": True}, "price"),
        ({"price": 2**63}, "price"),
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "nul\x00byte"}, "name"),
        ({"category_id": 0}, "category_id"),
        ({"colour": "red"}, "colour"),
        ({"id": 5}, "id"),
    ],
)
def test_a_bad_product_body_answers_400_naming_the_field(
    staff: str, make_category: Maker, change: dict[str, Any], field: str
) -> None:
    category = make_category()

    response = edge(
        "POST", "/api/v1/products", token=staff, json=_product_body(category["id"], **change)
    )

    error = assert_error(response, 400, "invalid_input")
    assert field in error["details"]["fields"]


def test_a_product_needs_every_field_but_description_and_brand(
    staff: str, make_category: Maker
) -> None:
    response = edge("POST", "/api/v1/products", token=staff, json={"name": "only a name"})

    error = assert_error(response, 400, "invalid_input")
    assert set(error["details"]["fields"]) == {"category_id", "price", "inventory"}


def test_a_product_in_a_category_that_does_not_exist_answers_400(staff: str) -> None:
    response = edge("POST", "/api/v1/products", token=staff, json=_product_body(2**62))

    error = assert_error(response, 400, "invalid_input")
    assert "category_id" in error["details"]["fields"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"a string"', b"null", b"42"])
def test_a_body_that_is_not_an_object_answers_400(staff: str, raw: bytes) -> None:
    response = edge(
        "POST",
        "/api/v1/categories",
        token=staff,
        data=raw,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_input", "malformed_request")


def test_a_put_must_carry_every_field(staff: str, make_product: Maker) -> None:
    product = make_product()

    response = edge("PUT", f"/api/v1/products/{product['id']}", token=staff, json={"price": 5})

    assert_error(response, 400, "invalid_input")
    assert edge("GET", f"/api/v1/products/{product['id']}").json()["price"] == product["price"]


def test_an_invalid_category_filter_answers_400() -> None:
    assert_error(
        edge("GET", "/api/v1/products", params={"category_id": "abc"}), 400, "invalid_input"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/products/987654321987",
        "/api/v1/products/99999999999999999999",
        "/api/v1/products/0",
        "/api/v1/products/abc",
        "/api/v1/categories/987654321987",
        "/api/v1/categories/99999999999999999999",
    ],
)
def test_what_does_not_exist_answers_404(path: str) -> None:
    assert_error(edge("GET", path), 404, "not_found")


def test_updating_what_does_not_exist_answers_404(staff: str, make_category: Maker) -> None:
    category = make_category()

    product = edge(
        "PUT", "/api/v1/products/987654321987", token=staff, json=_product_body(category["id"])
    )
    renamed = edge("PUT", "/api/v1/categories/987654321987", token=staff, json={"name": "x"})

    assert_error(product, 404, "not_found")
    assert_error(renamed, 404, "not_found")


def test_a_page_past_the_end_answers_404() -> None:
    assert_error(edge("GET", "/api/v1/products", params={"page": 10**9}), 404, "not_found")
