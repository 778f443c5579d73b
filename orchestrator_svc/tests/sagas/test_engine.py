"""The engine advances many sagas together (engine.sagas_advance).

Given several sagas started as the consumer starts them, when one invocation advances
them all, then each ends exactly as it would alone, and a wave of many costs the
database the same statements as a wave of one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import grpc
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common.contract.events import PurchaseStatus
from common.kafka.messages import ConsumedMessage
from orchestrator_svc.sagas import consumers, engine, services
from orchestrator_svc.sagas.models import Saga, SagaState
from orchestrator_svc.sagas.steps import StepDefinition
from orchestrator_svc.tests.fakes import (
    CALL_NAMES,
    FakeRpcError,
    FakeServices,
    published,
    purchase_event,
    saga_row,
    story,
)

pytestmark = pytest.mark.django_db

COMPLETED_STORY = [
    ("UPDATE_PRODUCT_INVENTORY", "EXECUTE"),
    ("UPDATE_PRODUCT_INVENTORY", "SUCCESS"),
    ("CREATE_ORDER", "EXECUTE"),
    ("CREATE_ORDER", "SUCCESS"),
    ("CREATE_PAYMENT", "EXECUTE"),
    ("CREATE_PAYMENT", "SUCCESS"),
]


class PerPurchase(FakeServices):
    """Scripted calls that fail one call name for some purchases only: a wave's calls
    run at once, so "the next call" of a name is not one saga's."""

    def __init__(self, name: str, code: grpc.StatusCode, purchase_ids: set[str]) -> None:
        super().__init__()
        self.failing, self.code, self.purchase_ids = name, code, purchase_ids

    def call(self, name: str) -> Any:
        plain = super().call(name)

        def run(purchase: Any, timeout: float) -> None:
            plain(purchase, timeout)
            if name == self.failing and purchase.purchase_id in self.purchase_ids:
                raise FakeRpcError(self.code)

        run.__name__ = name
        return run


def test_one_invocation_runs_every_saga_of_the_batch_to_its_end(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_ids = [start_saga() for _ in range(5)]

    results = engine.sagas_advance(purchase_ids=purchase_ids, owner="w1", steps=fake.steps())

    assert {pid: r.state for pid, r in results.items()} == dict.fromkeys(
        purchase_ids, SagaState.COMPLETED
    )
    assert fake.count("reserve_inventory") == fake.count("create_payment") == 5
    for pid in purchase_ids:
        assert story(pid) == COMPLETED_STORY


def test_a_refusal_compensates_only_its_own_saga(start_saga: Callable[..., str]) -> None:
    refused, *others = [start_saga() for _ in range(3)]
    fake = PerPurchase("create_order", grpc.StatusCode.FAILED_PRECONDITION, {refused})

    results = engine.sagas_advance(purchase_ids=[refused, *others], owner="w1", steps=fake.steps())

    assert results[refused].state == SagaState.FAILED
    assert [results[pid].state for pid in others] == [SagaState.COMPLETED] * 2
    assert story(refused)[-1] == ("UPDATE_PRODUCT_INVENTORY", "ROLLBACK")
    assert fake.count("cancel_order") == fake.count("release_inventory") == 1


def test_a_transient_fault_leaves_that_saga_waiting_and_finishes_the_rest(
    start_saga: Callable[..., str], settings: Any
) -> None:
    settings.SAGA_RETRY_BASE_SECONDS = 4
    settings.SAGA_RETRY_MAX_DELAY_SECONDS = 30
    purchase_ids = [start_saga() for _ in range(3)]
    slow = purchase_ids[1]
    fake = PerPurchase("create_payment", grpc.StatusCode.UNAVAILABLE, {slow})

    results = engine.sagas_advance(purchase_ids=purchase_ids, owner="w1", steps=fake.steps())

    assert results[slow].state == SagaState.RUNNING
    retry_in = results[slow].retry_in
    assert retry_in is not None and 1.5 <= retry_in <= 4.0
    saga = saga_row(slow)
    assert (saga.lease_owner, saga.lease_until) == ("", None)
    for pid in set(purchase_ids) - {slow}:
        assert results[pid].state == SagaState.COMPLETED


def test_sagas_not_due_or_leased_elsewhere_are_left_alone(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    mine, leased = start_saga(), start_saga()
    assert engine.sagas_advance(purchase_ids=[], owner="w1", steps=fake.steps()) == {}
    Saga.objects.filter(pk=leased).update(
        lease_owner="w2", lease_until=saga_row(leased).created_at.replace(year=2999)
    )

    results = engine.sagas_advance(purchase_ids=[mine, leased], owner="w1", steps=fake.steps())

    assert results[leased] == engine.Advance(acted=False)
    assert saga_row(leased).state == SagaState.STARTED
    assert results[mine].state == SagaState.COMPLETED


def test_a_task_fills_its_batch_with_other_due_sagas_but_not_leased_or_final_ones(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    given, waiting, leased = start_saga(), start_saga(), start_saga()
    Saga.objects.filter(pk=leased).update(
        lease_owner="w2", lease_until=saga_row(leased).created_at.replace(year=2999)
    )

    results = engine.sagas_advance(purchase_ids=[given], owner="w1", steps=fake.steps(), fill_to=10)

    assert set(results) == {given, waiting}
    assert {results[given].state, results[waiting].state} == {SagaState.COMPLETED}
    assert saga_row(leased).state == SagaState.STARTED
    again = engine.sagas_advance(purchase_ids=[], owner="w3", steps=fake.steps(), fill_to=10)
    assert again == {}


def test_a_wave_of_many_sagas_costs_the_statements_of_a_wave_of_one(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    def statements(count: int) -> int:
        purchase_ids = [start_saga() for _ in range(count)]
        with CaptureQueriesContext(connection) as captured:
            engine.sagas_advance(purchase_ids=purchase_ids, owner="w1", steps=fake.steps())
        return len(captured)

    statements(1)  # the first wave of the test's transaction also wakes the relay
    assert statements(8) == statements(1)


def test_the_batch_handler_starts_every_saga_once_and_hands_them_over_after_commit(
    enqueued: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    events = [purchase_event() for _ in range(3)]
    first = events[0]
    services.saga_start(event=first)  # already started: a redelivery in the batch
    enqueued.clear()
    headers = {"message-id": "1", "traceparent": f"00-{'a' * 32}-{'b' * 16}-01"}
    messages = [
        ConsumedMessage(
            topic="purchase",
            partition=0,
            offset=offset,
            key=event.purchase_id,
            value=json.dumps(event.to_json()).encode(),
            headers={name: value.encode() for name, value in headers.items()},
        )
        for offset, event in enumerate([*events, events[1]])
    ]

    with django_capture_on_commit_callbacks(execute=True):
        consumers.handle_purchase_messages(messages)

    assert Saga.objects.filter(pk__in=[e.purchase_id for e in events]).count() == 3
    assert sorted(enqueued) == sorted(e.purchase_id for e in events)
    assert saga_row(events[1].purchase_id).trace == {"traceparent": headers["traceparent"]}
    assert saga_row(events[2].purchase_id).payload == events[2].to_json()


def test_every_event_of_a_batch_says_where_its_own_purchase_stands(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    purchase_ids = [start_saga() for _ in range(4)]

    engine.sagas_advance(purchase_ids=purchase_ids, owner="w1", steps=fake.steps())

    for pid in purchase_ids:
        events = published(pid)
        assert [e.sequence for e in events] == list(range(1, 7))
        assert events[-1].purchase_status == PurchaseStatus.COMPLETED


class Batching(PerPurchase):
    """PerPurchase whose steps also have batch forms, which record each batch's size."""

    def __init__(self, name: str, code: grpc.StatusCode, purchase_ids: set[str]) -> None:
        super().__init__(name, code, purchase_ids)
        self.batches: list[tuple[str, int]] = []

    def batch(self, name: str) -> Any:
        single = self.call(name)

        def run(purchases: Any, timeout: float) -> list[Exception | None]:
            self.batches.append((name, len(purchases)))
            outcomes: list[Exception | None] = []
            for purchase in purchases:
                try:
                    single(purchase, timeout)
                    outcomes.append(None)
                except Exception as exc:
                    outcomes.append(exc)
            return outcomes

        return run

    def steps(self) -> tuple[StepDefinition, ...]:
        return tuple(
            replace(
                definition,
                batch_command=self.batch(do),
                batch_compensation=self.batch(undo),
            )
            for definition, (do, undo) in zip(super().steps(), CALL_NAMES.items(), strict=True)
        )


def test_a_wave_makes_one_batch_call_per_step_and_each_saga_takes_its_own_answer(
    start_saga: Callable[..., str],
) -> None:
    purchase_ids = [start_saga() for _ in range(4)]
    refused = purchase_ids[2]
    fake = Batching("create_payment", grpc.StatusCode.FAILED_PRECONDITION, {refused})

    results = engine.sagas_advance(purchase_ids=purchase_ids, owner="w1", steps=fake.steps())

    # The refused saga compensates alone: its calls are batches of one.
    assert fake.batches == [
        ("reserve_inventory", 4),
        ("create_order", 4),
        ("create_payment", 4),
        ("refund_payment", 1),
        ("cancel_order", 1),
        ("release_inventory", 1),
    ]
    assert results[refused].state == SagaState.FAILED
    assert fake.count("refund_payment") == fake.count("cancel_order") == 1
    assert [results[pid].state for pid in purchase_ids if pid != refused] == [
        SagaState.COMPLETED
    ] * 3


def test_a_batch_call_that_fails_as_a_whole_retries_every_saga_of_it(
    start_saga: Callable[..., str], settings: Any
) -> None:
    settings.SAGA_RETRY_BASE_SECONDS = 4
    purchase_ids = [start_saga() for _ in range(3)]
    fake = Batching("create_order", grpc.StatusCode.OK, set())
    definitions = list(fake.steps())

    def unreachable(purchases: Any, timeout: float) -> list[Exception | None]:
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)

    definitions[1] = replace(definitions[1], batch_command=unreachable)

    results = engine.sagas_advance(purchase_ids=purchase_ids, owner="w1", steps=definitions)

    for pid in purchase_ids:
        assert results[pid].state == SagaState.RUNNING and results[pid].retry_in is not None
        assert saga_row(pid).step_index == 1
