"""common.ids without Django settings: purchase and customer ids, and owner-only reads."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.errors import ApplicationError, ErrorCode
from common.ids import MAX_INT64, check_customer_id, parse_purchase_id, parse_uuid, read_owned

PURCHASE = uuid.uuid4()


def test_a_uuid_is_read_from_its_text_or_itself() -> None:
    assert parse_uuid(str(PURCHASE)) == PURCHASE
    assert parse_uuid(PURCHASE) is PURCHASE


@pytest.mark.parametrize("value", ["", "not-a-uuid", "1234", None, 42, object()])
def test_anything_else_names_no_uuid(value: Any) -> None:
    assert parse_uuid(value) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "purchase_id is required."),
        (None, "purchase_id is required."),
        ("not-a-uuid", "purchase_id must be a UUID, not 'not-a-uuid'."),
    ],
)
def test_a_purchase_id_that_is_no_uuid_is_invalid_input(value: Any, message: str) -> None:
    with pytest.raises(ApplicationError) as raised:
        parse_purchase_id(value)

    assert (raised.value.code, raised.value.message) == (ErrorCode.INVALID_INPUT, message)


@pytest.mark.parametrize("value", [0, -1, MAX_INT64 + 1, "7", 7.0, None])
def test_a_customer_id_is_a_positive_int64(value: Any) -> None:
    assert check_customer_id(MAX_INT64) == MAX_INT64
    with pytest.raises(ApplicationError) as raised:
        check_customer_id(value)
    assert raised.value.code is ErrorCode.INVALID_INPUT


@pytest.mark.parametrize(
    ("record", "seen"),
    [
        ({"id": str(PURCHASE), "customer_id": 7}, True),
        ({"id": str(PURCHASE), "customer_id": 8}, False),  # another customer's
        ({"id": str(PURCHASE), "customer_id": None}, False),  # a tombstone
        (None, False),  # none at all
    ],
)
def test_only_the_owner_reads_a_record(record: dict[str, Any] | None, seen: bool) -> None:
    asked: list[uuid.UUID] = []

    def read(record_id: uuid.UUID) -> dict[str, Any] | None:
        asked.append(record_id)
        return record

    answer = read_owned(str(PURCHASE), customer_id=7, read=read)

    assert answer == (record if seen else None)
    assert asked == [PURCHASE]


def test_an_id_that_is_no_uuid_is_not_even_read() -> None:
    asked: list[Any] = []

    assert read_owned("12345", customer_id=7, read=lambda i: asked.append(i)) is None
    assert asked == []
