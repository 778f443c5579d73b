"""The catalog's admin, in-process: lists and searches load, edits keep the cache right."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from product_svc.catalog import selectors, services

pytestmark = pytest.mark.django_db

ADMIN = "/admin/product/catalog"


@pytest.mark.parametrize(
    "path",
    [
        f"{ADMIN}/category/?q=whey",
        f"{ADMIN}/product/?q=whey",
        f"{ADMIN}/reservation/?q=whey",
        f"{ADMIN}/reservation/?q={uuid.uuid4()}",
    ],
)
def test_lists_and_searches_answer(admin_client: Client, path: str) -> None:
    assert admin_client.get(path).status_code == 200


def test_a_reservation_shows_its_lines(admin_client: Client) -> None:
    category = services.category_create(name="whey")
    product = services.product_create(category_id=category.id, name="Whey", price=1, inventory=5)
    purchase = uuid.uuid4()
    services.inventory_reserve(purchase_id=purchase, items=[(product.id, 2)])

    page = admin_client.get(f"{ADMIN}/reservation/{purchase}/change/")

    assert page.status_code == 200
    assert b"Whey" in page.content


def test_a_stock_edit_in_the_admin_is_read_back(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    category = services.category_create(name="whey")
    product = services.product_create(category_id=category.id, name="Whey", price=1, inventory=5)
    assert selectors.product_get(product_id=product.id)["inventory"] == 5  # type: ignore[index]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"{ADMIN}/product/{product.id}/change/",
            {
                "category": category.id,
                "name": "Whey",
                "description": "",
                "brand_name": "",
                "price": 1,
                "inventory": 42,
            },
        )

    assert response.status_code == 302
    assert selectors.product_get(product_id=product.id)["inventory"] == 42  # type: ignore[index]
