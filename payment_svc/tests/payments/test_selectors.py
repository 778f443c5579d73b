"""Reads of payments, in-process: only the owner finds a payment."""

from __future__ import annotations

import uuid

import pytest

from payment_svc.payments import selectors, services

pytestmark = pytest.mark.django_db

OWNER, OTHER = 11, 12


def pay(customer_id: int = OWNER) -> uuid.UUID:
    purchase = uuid.uuid4()
    services.payment_create(
        purchase_id=purchase, customer_id=customer_id, amount=500, currency_code="EUR"
    )
    return purchase


def test_the_owner_reads_the_payment() -> None:
    purchase = pay()

    payment = selectors.payment_get_for_customer(payment_id=str(purchase), customer_id=OWNER)

    assert payment is not None
    assert (payment["id"], payment["status"], payment["amount"], payment["currency_code"]) == (
        str(purchase),
        "COMPLETED",
        500,
        "EUR",
    )


@pytest.mark.parametrize("reader", [OTHER, 0])
def test_another_customer_finds_nothing(reader: int) -> None:
    purchase = pay()
    assert selectors.payment_get_for_customer(payment_id=str(purchase), customer_id=reader) is None


@pytest.mark.parametrize("value", ["nope", "", "1234", "../admin"])
def test_an_id_that_is_no_uuid_finds_nothing(value: str) -> None:
    assert selectors.payment_get_for_customer(payment_id=value, customer_id=OWNER) is None


def test_a_tombstone_is_nobody_s_payment() -> None:
    purchase = uuid.uuid4()
    services.payment_refund(purchase_id=purchase)

    assert selectors.payment_get_for_customer(payment_id=str(purchase), customer_id=OWNER) is None
    assert not selectors.payment_list(customer_id=OWNER).filter(id=purchase).exists()


def test_the_list_is_the_customer_s_own_newest_first() -> None:
    first, second = pay(), pay()
    pay(OTHER)
    services.payment_refund(purchase_id=first)

    assert [p.id for p in selectors.payment_list(customer_id=OWNER)] == [second, first]
    assert [p.id for p in selectors.payment_list(customer_id=OWNER, status="REFUNDED")] == [first]
