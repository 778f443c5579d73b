"""Fixtures of the orchestrator's in-process tests.

The state machine runs against pytest-django's test database with fake step calls
(tests/fakes.py): no gRPC, no broker; enqueueing is recorded instead of sent. The
live tests in `integration/` use none of this: they drive the running system.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from common.admin_identity.testing import admin_client, fake_identities  # noqa: F401
from deploy.local.throwaway import backing_services  # noqa: F401
from orchestrator_svc.sagas import circuits, clients, services
from orchestrator_svc.tests.fakes import FakeServices, RecordingStub, purchase_event
from saga_proto import order_pb2, payment_pb2


@pytest.fixture
def fake() -> FakeServices:
    return FakeServices()


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Purchase ids handed to Celery (recorded, not sent)."""
    sent: list[str] = []
    monkeypatch.setattr(services, "enqueue_advance", sent.extend)
    return sent


@pytest.fixture(autouse=True)
def saga_settings(settings: Any) -> Any:
    """Budgets small enough to read (three calls within long windows), retries due at
    once unless a test says otherwise; every test starts with closed circuits."""
    circuits.reset()
    settings.SAGA_MAX_ATTEMPTS = 3
    settings.SAGA_MAX_COMPENSATION_ATTEMPTS = 3
    settings.SAGA_STEP_RETRY_WINDOW_SECONDS = 300
    settings.SAGA_STEP_RETRY_WINDOWS = {}
    settings.SAGA_COMPENSATION_RETRY_WINDOW_SECONDS = 3600
    settings.SAGA_CIRCUIT_FAILURES = 5
    settings.SAGA_CIRCUIT_OPEN_SECONDS = 5
    settings.SAGA_RETRY_BASE_SECONDS = 0
    settings.SAGA_RETRY_MAX_DELAY_SECONDS = 0
    settings.SAGA_STEP_DEADLINE_SECONDS = 5
    settings.SAGA_LEASE_SECONDS = 15
    settings.SAGA_STALL_SECONDS = 15
    return settings


@pytest.fixture
def start_saga(enqueued: list[str]) -> Callable[..., str]:
    """Start a saga as the consumer would (the enqueue is recorded); answer its id."""

    def start(**changes: Any) -> str:
        event = purchase_event(**changes)
        services.saga_start(event=event)
        return event.purchase_id

    return start


@pytest.fixture
def stub_replies() -> dict[str, Any]:
    """What the peers answer by method (RecordingStub): the order created, the payment
    completed; a test may change or add answers."""
    return {
        "CreateOrder": order_pb2.OrderReply(status="CREATED"),
        "CreatePayment": payment_pb2.PaymentReply(status="COMPLETED"),
    }


@pytest.fixture
def stub_calls(
    monkeypatch: pytest.MonkeyPatch, stub_replies: dict[str, Any]
) -> list[tuple[str, Any, float]]:
    """The calls clients.py makes, recorded (method, request, deadline) instead of sent."""
    recorded: list[tuple[str, Any, float]] = []
    monkeypatch.setattr(clients, "stub", lambda stub_class: RecordingStub(recorded, stub_replies))
    return recorded
