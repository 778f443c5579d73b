"""The ids services pass each other: purchase ids (UUIDs) and customer ids (int64).

Every saga command is keyed by its purchase id, which is also the primary key of the
row the step writes (an order, a payment); a customer may read such a row by id only
when it is theirs, and every other case reads as "none", so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from common.errors import ApplicationError, ErrorCode

MAX_INT64 = 2**63 - 1
"""The largest value a bigint column (an id, an amount in minor units) can hold."""


def parse_uuid(value: Any) -> uuid.UUID | None:
    """The UUID an id in a URL or a request names, or None when it names none."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def parse_purchase_id(value: Any) -> uuid.UUID:
    """A purchase id from its text (or UUID); INVALID_INPUT when empty or not a UUID."""
    if value is None or value == "":
        raise ApplicationError(ErrorCode.INVALID_INPUT, "purchase_id is required.")
    parsed = parse_uuid(value)
    if parsed is None:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, f"purchase_id must be a UUID, not {value!r}."
        )
    return parsed


def parse_purchase_ids(values: Sequence[Any], *, limit: int) -> list[uuid.UUID]:
    """The purchase ids of a read-many request, duplicates dropped; INVALID_INPUT when
    one is not a UUID or there are more than `limit` of them."""
    if len(values) > limit:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"At most {limit} purchase ids per call.")
    return list(dict.fromkeys(parse_purchase_id(value) for value in values))


def check_customer_id(customer_id: Any) -> int:
    """A customer id as a command carries it: a positive int64; INVALID_INPUT otherwise."""
    if not isinstance(customer_id, int) or not 1 <= customer_id <= MAX_INT64:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, f"customer_id must be a positive id, not {customer_id!r}."
        )
    return customer_id


def read_owned(
    record_id: Any,
    *,
    customer_id: int,
    read: Callable[[uuid.UUID], dict[str, Any] | None],
) -> dict[str, Any] | None:
    """The record (a dict with a `customer_id`) that `read` answers for `record_id`, if
    this customer owns it; else None. An id that is not a UUID, an unknown id, a
    tombstone (no customer) and another customer's record all answer None, so a caller
    cannot tell them apart."""
    parsed = parse_uuid(record_id)
    if parsed is None:
        return None
    record = read(parsed)
    if record is None or record["customer_id"] is None or record["customer_id"] != customer_id:
        return None
    return record
