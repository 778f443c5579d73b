"""The saga's Kafka messages, shared by their producers and consumers.

JSON bodies, keyed by purchase id. `parse_*` raise PoisonMessage for a body that can
never be handled, so the consumer sends it to the dead-letter topic with the reason.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from common.ids import MAX_INT64
from common.kafka.messages import PoisonMessage


class Step(StrEnum):
    """The seed's step vocabulary."""

    UPDATE_PRODUCT_INVENTORY = "UPDATE_PRODUCT_INVENTORY"
    CREATE_ORDER = "CREATE_ORDER"
    CREATE_PAYMENT = "CREATE_PAYMENT"


class StepStatus(StrEnum):
    """The seed's status vocabulary for one step, plus RETRY: the step's call failed
    transiently or its participant is known to be down, and the call is made again at
    the event's `retry_at` (the purchase stays PENDING meanwhile), and CANCELLED."""

    EXECUTE = "EXECUTE"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    ROLLBACK = "ROLLBACK"
    ROLLBACK_FAILED = "ROLLBACK_FAILED"
    RETRY = "RETRY"
    # The step will not run: the purchase was cancelled before it (the final event of
    # a saga cancelled before any step ran).
    CANCELLED = "CANCELLED"


MAX_ITEM_NAME_LENGTH = 200
"""The longest product name a line carries (the product's and the order line's limit)."""


@dataclass(frozen=True)
class PurchaseItem:
    """One line of a purchase, at the unit price and under the product name the customer
    was shown (price in minor units). `name` is last and may be empty: an event written
    before lines carried names parses with "" (parse_purchase_created)."""

    product_id: int
    quantity: int
    unit_price: int
    name: str = ""


@dataclass(frozen=True)
class PurchaseCreated:
    """The saga's input: what the purchase stored, prices included.

    `amount` is the sum of unit_price x quantity over `items` (parse_purchase_created
    checks it), so the order the saga creates and the payment it takes always agree.
    """

    purchase_id: str
    customer_id: int
    items: tuple[PurchaseItem, ...]
    amount: int
    currency_code: str

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["items"] = [asdict(i) for i in self.items]
        return body


class PurchaseStatus(StrEnum):
    """Where the purchase stands as a whole; the orchestrator decides, the purchase shows."""

    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"  # every step that had run is compensated
    NEEDS_ATTENTION = "NEEDS_ATTENTION"  # a compensation could not finish
    CANCELLED = "CANCELLED"  # the customer (or staff) cancelled; every step done is undone

    @property
    def is_final(self) -> bool:
        return self is not PurchaseStatus.PENDING


@dataclass(frozen=True)
class PurchaseResult:
    """One step change of a saga, published on `purchase-result` keyed by purchase id.

    `step` and `status` are the seed's vocabulary; `purchase_status` is the purchase's
    overall state after this change; `sequence` orders the changes of one saga;
    `retry_at` (ISO 8601, RETRY only) is when the call is due again. `reason`, on the
    final event, says why the saga ended when not by a step's own outcome: one of
    `END_REASONS` ("cancelled", "deadline"), else "" (also on every other event, and on
    bodies written before the field existed; parse_purchase_result keeps an unknown one).
    """

    purchase_id: str
    step: Step
    status: StepStatus
    purchase_status: PurchaseStatus = PurchaseStatus.PENDING
    sequence: int = 0
    attempt: int = 1
    error: str = ""
    retry_at: str = ""
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "step": self.step.value,
            "status": self.status.value,
            "purchase_status": self.purchase_status.value,
        }


END_REASON_CANCELLED = "cancelled"
END_REASON_DEADLINE = "deadline"
END_REASONS = ("", END_REASON_CANCELLED, END_REASON_DEADLINE)
"""`PurchaseResult.reason`: "" (a step's own outcome), a cancel, or the saga's deadline."""
MAX_END_REASON_LENGTH = 32
"""A reader accepts an unknown reason (a newer producer's) up to this length."""


class CancelRequester(StrEnum):
    """Who asked to cancel a purchase."""

    CUSTOMER = "customer"
    STAFF = "staff"


PURCHASE_CANCEL_REQUESTED = "PurchaseCancelRequested"
PURCHASE_CREATED = "PurchaseCreated"


@dataclass(frozen=True)
class PurchaseCancelRequested:
    """A request to cancel a purchase's saga, on the `purchase` topic keyed by purchase id
    (so it follows the purchase's PurchaseCreated in the same partition). The saga stops
    forward progress at its next transition and undoes what it did; asking twice is
    asking once."""

    purchase_id: str
    customer_id: int
    requested_by: str  # a CancelRequester: "customer" | "staff"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": PURCHASE_CANCEL_REQUESTED,
            "purchase_id": self.purchase_id,
            "customer_id": self.customer_id,
            "requested_by": str(self.requested_by),
        }


def _require(body: Any, key: str, kind: type) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise PoisonMessage(f"missing field {key!r}")
    value = body[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PoisonMessage(f"field {key!r} must be {kind.__name__}")
    return value


def _purchase_id(body: Any) -> str:
    raw = _require(body, "purchase_id", str)
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise PoisonMessage(f"purchase_id is not a UUID: {raw!r}") from exc


def parse_purchase_created(body: Any) -> PurchaseCreated:
    items_raw = _require(body, "items", list)
    if not items_raw:
        raise PoisonMessage("items is empty")
    items = []
    for raw in items_raw:
        product_id, quantity = _require(raw, "product_id", int), _require(raw, "quantity", int)
        unit_price = _require(raw, "unit_price", int)
        # Optional: events published before lines carried names have none.
        name = _require(raw, "name", str) if "name" in raw else ""
        if product_id < 1 or quantity < 1:
            raise PoisonMessage("product_id and quantity must be positive")
        if unit_price < 0:
            raise PoisonMessage("unit_price must not be negative")
        if len(name) > MAX_ITEM_NAME_LENGTH:
            raise PoisonMessage(f"name must be at most {MAX_ITEM_NAME_LENGTH} characters")
        items.append(PurchaseItem(product_id, quantity, unit_price, name))
    amount = _require(body, "amount", int)
    if not 0 <= amount <= MAX_INT64:
        raise PoisonMessage("amount must be from 0 to 2**63 - 1")
    total = sum(item.unit_price * item.quantity for item in items)
    if total != amount:
        # The order records the prices, the payment charges the amount: they must agree.
        raise PoisonMessage(f"amount {amount} is not the sum of the lines ({total})")
    return PurchaseCreated(
        purchase_id=_purchase_id(body),
        customer_id=_require(body, "customer_id", int),
        items=tuple(items),
        amount=amount,
        currency_code=_require(body, "currency_code", str),
    )


def parse_purchase_cancel_requested(body: Any) -> PurchaseCancelRequested:
    try:
        requested_by = CancelRequester(_require(body, "requested_by", str))
    except ValueError as exc:
        raise PoisonMessage(str(exc)) from exc
    customer_id = _require(body, "customer_id", int)
    if not 1 <= customer_id <= MAX_INT64:
        raise PoisonMessage("customer_id must be from 1 to 2**63 - 1")
    return PurchaseCancelRequested(_purchase_id(body), customer_id, requested_by)


def parse_purchase_message(body: Any) -> PurchaseCreated | PurchaseCancelRequested:
    """A message of the `purchase` topic, by its "type": PurchaseCreated (also when the
    body has no "type", as every body written before cancellation) or
    PurchaseCancelRequested. PoisonMessage for any other type."""
    kind = body.get("type", PURCHASE_CREATED) if isinstance(body, dict) else PURCHASE_CREATED
    if kind == PURCHASE_CREATED:
        return parse_purchase_created(body)
    if kind == PURCHASE_CANCEL_REQUESTED:
        return parse_purchase_cancel_requested(body)
    raise PoisonMessage(f"unknown message type {kind!r} on the purchase topic")


def parse_purchase_result(body: Any) -> PurchaseResult:
    try:
        step = Step(_require(body, "step", str))
        status = StepStatus(_require(body, "status", str))
        overall = PurchaseStatus(body.get("purchase_status", PurchaseStatus.PENDING.value))
    except ValueError as exc:
        raise PoisonMessage(str(exc)) from exc
    sequence, attempt, error, retry_at, reason = (
        body.get("sequence", 0),
        body.get("attempt", 1),
        body.get("error", ""),
        body.get("retry_at", ""),
        body.get("reason", ""),  # absent from bodies written before cancellation
    )
    if not isinstance(sequence, int) or not isinstance(attempt, int):
        raise PoisonMessage("sequence and attempt must be integers")
    if not isinstance(error, str) or not isinstance(retry_at, str):
        raise PoisonMessage("error and retry_at must be strings")
    # An unknown reason is kept, not refused: a final event must never be lost to a
    # newer producer's vocabulary.
    if not isinstance(reason, str) or len(reason) > MAX_END_REASON_LENGTH:
        raise PoisonMessage(f"reason must be a string of at most {MAX_END_REASON_LENGTH}")
    if retry_at:
        try:
            datetime.fromisoformat(retry_at)
        except ValueError as exc:
            raise PoisonMessage(f"retry_at is not an ISO 8601 time: {retry_at!r}") from exc
    return PurchaseResult(
        _purchase_id(body), step, status, overall, sequence, attempt, error, retry_at, reason
    )
