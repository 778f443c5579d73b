"""Fakes and helpers of the orchestrator's in-process tests: scripted step calls
(`FakeServices`) instead of gRPC, a stub that records the calls clients.py makes
(`RecordingStub`), and readers of what a saga recorded and published."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import grpc

from common.contract.events import (
    PurchaseCreated,
    PurchaseItem,
    PurchaseResult,
    parse_purchase_result,
)
from common.grpc.errors import CallFailed
from common.outbox.models import OutboxMessage
from orchestrator_svc.sagas import services
from orchestrator_svc.sagas.models import Saga, SagaStepLog
from orchestrator_svc.sagas.steps import PURCHASE_STEPS, StepCall, StepDefinition

# The purchase saga's steps as step-log rows and events name them.
INVENTORY, ORDER, PAYMENT = "UPDATE_PRODUCT_INVENTORY", "CREATE_ORDER", "CREATE_PAYMENT"

CALL_NAMES = {
    "reserve_inventory": "release_inventory",
    "create_order": "cancel_order",
    "create_payment": "refund_payment",
}
FORWARD = list(CALL_NAMES)


class FakeRpcError(CallFailed):
    """What a stub raises: a status code and details (by default the code's name)."""

    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        super().__init__(code, details or code.name.lower())


class FakeServices:
    """The product, order and payment services, scripted per call name.

    `fail(name, code, ...)` queues failures for the next calls of `name` (None = OK);
    `fail_always(name, code)` fails every call until `heal(name)`. `calls` lists every
    call made, in order; `hooks` run inside a call (to race another worker, say).
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.queued: dict[str, list[grpc.StatusCode | None]] = defaultdict(list)
        self.always: dict[str, grpc.StatusCode] = {}
        self.hooks: dict[str, Callable[[], None]] = {}

    def fail(self, name: str, *codes: grpc.StatusCode | None) -> None:
        self.queued[name].extend(codes)

    def fail_always(self, name: str, code: grpc.StatusCode) -> None:
        self.always[name] = code

    def heal(self, name: str) -> None:
        self.always.pop(name, None)

    def call(self, name: str) -> StepCall:
        def run(purchase: PurchaseCreated, timeout: float) -> None:
            assert timeout > 0
            self.calls.append(name)
            if name in self.hooks:
                self.hooks[name]()
            if name in self.always:
                raise FakeRpcError(self.always[name])
            if self.queued[name]:
                code = self.queued[name].pop(0)
                if code is not None:
                    raise FakeRpcError(code)

        run.__name__ = name
        return run

    def steps(self) -> tuple[StepDefinition, ...]:
        return tuple(
            StepDefinition(definition.step, definition.participant, self.call(do), self.call(undo))
            for definition, (do, undo) in zip(PURCHASE_STEPS, CALL_NAMES.items(), strict=True)
        )

    def count(self, name: str) -> int:
        return self.calls.count(name)


class RecordingStub:
    """Any gRPC stub, in place of the edge: each call is recorded as (method, request,
    deadline) and answered from `replies` by method name (None without one)."""

    def __init__(self, calls: list[tuple[str, Any, float]], replies: dict[str, Any]) -> None:
        self._calls, self._replies = calls, replies

    def __getattr__(self, method: str) -> Any:
        def call(request: Any, *, timeout: float) -> Any:
            self._calls.append((method, request, timeout))
            return self._replies.get(method)

        return call


def purchase_event(**changes: Any) -> PurchaseCreated:
    fields: dict[str, Any] = {
        "purchase_id": str(uuid.uuid4()),
        "customer_id": 42,
        "items": (PurchaseItem(1, 4, 1390), PurchaseItem(2, 5, 3780)),
        "amount": 24460,  # 4 x 1390 + 5 x 3780
        "currency_code": "VND",
    }
    fields.update(changes)
    return PurchaseCreated(**fields)


def run_to_rest(purchase_id: str, fake: FakeServices, owner: str = "w1") -> services.Advance:
    """Advance as the worker and its retries would, until nothing is due at once."""
    steps = fake.steps()
    for _ in range(50):
        result = services.saga_advance(purchase_id=purchase_id, owner=owner, steps=steps)
        if result.retry_in is None:
            return result
    raise AssertionError("the saga did not come to rest")


def published(purchase_id: str) -> list[PurchaseResult]:
    """The purchase-result events of a saga, in outbox order."""
    rows = OutboxMessage.objects.filter(key=purchase_id).order_by("id")
    assert all(row.topic == "purchase-result" for row in rows)
    return [parse_purchase_result(row.payload) for row in rows]


def story(purchase_id: str) -> list[tuple[str, str]]:
    """(step, status) of each published event."""
    return [(e.step.value, e.status.value) for e in published(purchase_id)]


def log_rows(purchase_id: str) -> list[SagaStepLog]:
    return list(SagaStepLog.objects.filter(saga_id=purchase_id).order_by("id"))


def saga_row(purchase_id: str) -> Saga:
    return Saga.objects.get(pk=purchase_id)
