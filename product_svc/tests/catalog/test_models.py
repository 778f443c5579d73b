"""The database's own guards: stock and prices never go below zero."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from product_svc.catalog.models import Category, Product

pytestmark = pytest.mark.django_db


def _product(inventory: int = 1) -> Product:
    category = Category.objects.create(name="c")
    return Product.objects.create(category=category, name="p", price=1, inventory=inventory)


def test_the_database_refuses_negative_inventory_whoever_writes_it() -> None:
    product = _product(inventory=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(id=product.id).update(inventory=F("inventory") - 2)

    product.refresh_from_db()
    assert product.inventory == 1


def test_the_database_refuses_a_negative_price() -> None:
    product = _product()

    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(id=product.id).update(price=-1)
