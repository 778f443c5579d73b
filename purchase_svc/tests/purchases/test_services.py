"""Writes of the purchase service, in-process against the test database."""

from __future__ import annotations

import select
import threading
import time
import uuid
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from common.contract.events import (
    PurchaseItem,
    PurchaseResult,
    PurchaseStatus,
    Step,
    StepStatus,
    parse_purchase_created,
)
from common.outbox.models import OutboxMessage
from common.postgresql import own_connection
from purchase_svc.purchases import services
from purchase_svc.purchases.clients import ProductQuote
from purchase_svc.purchases.idempotency import IdempotencyKeyReused
from purchase_svc.purchases.models import Purchase, PurchaseStepEvent
from purchase_svc.purchases.services import PurchaseLine
from purchase_svc.tests.conftest import FakeCatalog, purchase_row


def answer_of(purchase: Purchase) -> tuple[int, str]:
    """A stand-in for the API's first answer (apis.py): what the service stores."""
    return 202, f'{{"id":"{purchase.id}"}}'


def create(customer_id: int = 7, key: str | None = None, fingerprint: str = "f") -> Any:
    return services.purchase_create(
        customer_id=customer_id,
        lines=[PurchaseLine(1, 2)],
        currency_code="VND",
        first_answer=answer_of,
        idempotency_key=key,
        request_fingerprint=fingerprint,
    )


@pytest.mark.django_db
def test_the_purchase_and_its_outbox_row_commit_together(products: FakeCatalog) -> None:
    products.add(1, price=100)

    created = create()

    purchase = created.purchase
    outbox = OutboxMessage.objects.get(key=str(purchase.id))
    assert outbox.payload["amount"] == purchase.amount == 200
    # Both rows were written by one transaction: same xmin in PostgreSQL.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT xmin::text FROM purchase WHERE id = %s),"
            " (SELECT xmin::text FROM outbox_message WHERE id = %s)",
            [purchase.id, outbox.id],
        )
        purchase_xid, outbox_xid = cursor.fetchone()
    assert purchase_xid == outbox_xid


@pytest.mark.django_db
def test_the_event_carries_the_unit_prices_the_purchase_stored(products: FakeCatalog) -> None:
    products.add(1, price=1390)
    products.add(2, price=3780)

    created = services.purchase_create(
        customer_id=7,
        lines=[PurchaseLine(1, 4), PurchaseLine(2, 5)],
        currency_code="VND",
        first_answer=answer_of,
    )

    purchase = created.purchase
    outbox = OutboxMessage.objects.get(key=str(purchase.id))
    priced = [
        {"product_id": 1, "quantity": 4, "unit_price": 1390},
        {"product_id": 2, "quantity": 5, "unit_price": 3780},
    ]
    assert purchase.items == priced
    # The stand-in catalog answers no names: the event's are empty.
    assert outbox.payload["items"] == [{**item, "name": ""} for item in priced]
    # The saga reads it back whole: the order's total will be the amount charged.
    event = parse_purchase_created(outbox.payload)
    assert event.items == (PurchaseItem(1, 4, 1390), PurchaseItem(2, 5, 3780))
    assert event.amount == purchase.amount == 4 * 1390 + 5 * 3780


@pytest.mark.django_db
def test_the_event_carries_the_names_the_customer_was_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quotes = {
        1: ProductQuote(product_id=1, price=1390, inventory=9, enough=True, name="Whey 1kg"),
        2: ProductQuote(product_id=2, price=3780, inventory=9, enough=True, name="Casein 2kg"),
    }
    monkeypatch.setattr(services, "products_check", lambda *, items: quotes)

    created = services.purchase_create(
        customer_id=7,
        lines=[PurchaseLine(2, 5), PurchaseLine(1, 4)],
        currency_code="VND",
        first_answer=answer_of,
    )

    purchase = created.purchase
    event = parse_purchase_created(OutboxMessage.objects.get(key=str(purchase.id)).payload)
    assert event.items == (
        PurchaseItem(2, 5, 3780, "Casein 2kg"),
        PurchaseItem(1, 4, 1390, "Whey 1kg"),
    )
    # The purchase's own lines are what its API shows: product, quantity and price.
    assert purchase.items == [
        {"product_id": 2, "quantity": 5, "unit_price": 3780},
        {"product_id": 1, "quantity": 4, "unit_price": 1390},
    ]


@pytest.mark.django_db
def test_the_first_answer_is_stored_with_the_purchase_it_was_asked_for(
    products: FakeCatalog,
) -> None:
    products.add(1, price=100)
    asked: list[tuple[Any, int, str, str]] = []

    def first_answer(purchase: Purchase) -> tuple[int, str]:
        asked.append((purchase.id, purchase.amount, purchase.currency_code, purchase.status))
        return answer_of(purchase)

    created = services.purchase_create(
        customer_id=7, lines=[PurchaseLine(1, 2)], currency_code="VND", first_answer=first_answer
    )

    stored = Purchase.objects.get(id=created.purchase.id)
    assert asked == [(stored.id, 200, "VND", "PENDING")]
    assert (stored.response_status, stored.response_body) == (202, f'{{"id":"{stored.id}"}}')


@pytest.mark.django_db
def test_when_the_outbox_write_fails_no_purchase_is_left(
    products: FakeCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    products.add(1, price=100)

    real_outbox = services.outbox_enqueue_many

    def broken_outbox(messages: Any, *, along_with: Any = ()) -> None:
        real_outbox([], along_with=along_with)  # the purchase is written, then
        raise RuntimeError("outbox unavailable")  # its event cannot be

    monkeypatch.setattr(services, "outbox_enqueue_many", broken_outbox)

    with pytest.raises(RuntimeError):
        create()

    assert not Purchase.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_a_replay_with_another_fingerprint_is_refused(products: FakeCatalog) -> None:
    products.add(1, price=100)
    create(key="k", fingerprint="a")

    with pytest.raises(IdempotencyKeyReused):
        create(key="k", fingerprint="b")


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_purchase(products: FakeCatalog) -> None:
    """Eight requests with the same key at once: each one priced its lines and tried to
    insert; one purchase and one outbox row exist, and every request answers it."""
    products.add(1, price=100)
    products.delay = 0.2  # all of them are inside CheckProducts at the same time
    customer_id = 4242
    barrier = threading.Barrier(8)
    answers: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def request() -> None:
        try:
            barrier.wait()
            created = create(customer_id=customer_id, key="double-click")
            answers.append((str(created.purchase.id), created.replayed))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert not errors, errors
    assert len(answers) == 8
    assert len({purchase_id for purchase_id, _ in answers}) == 1
    assert sorted(replayed for _, replayed in answers) == [False] + [True] * 7
    assert Purchase.objects.filter(customer_id=customer_id).count() == 1
    assert OutboxMessage.objects.count() == 1
    assert len(products.calls) == 8


# ------------------------------------------------------------------ purchase_step_record


def record(
    purchase_id: str, sequence: int, status: PurchaseStatus, message_id: str | None = None
) -> bool:
    return services.purchase_step_record(
        message_id=message_id or uuid.uuid4().hex,
        result=PurchaseResult(
            purchase_id,
            Step.CREATE_PAYMENT,
            StepStatus.SUCCESS,
            purchase_status=status,
            sequence=sequence,
        ),
    )


@pytest.mark.django_db
def test_the_status_follows_the_newest_sequence_only(products: FakeCatalog) -> None:
    products.add(1, price=100)
    purchase = create().purchase
    pid = str(purchase.id)

    record(pid, 2, PurchaseStatus.PENDING)
    record(pid, 5, PurchaseStatus.COMPLETED)
    record(pid, 4, PurchaseStatus.PENDING)  # late: recorded, but does not move the status
    record(pid, 5, PurchaseStatus.FAILED)  # same sequence again: not newer

    purchase.refresh_from_db()
    assert (purchase.status, purchase.last_sequence) == ("COMPLETED", 5)
    assert PurchaseStepEvent.objects.filter(purchase_id=pid).count() == 4


@pytest.mark.django_db
def test_a_repeated_message_is_recorded_and_applied_once(products: FakeCatalog) -> None:
    products.add(1, price=100)
    pid = str(create().purchase.id)

    assert record(pid, 1, PurchaseStatus.FAILED, message_id="m1") is True
    Purchase.objects.filter(id=pid).update(status="PENDING", last_sequence=0)
    assert record(pid, 1, PurchaseStatus.FAILED, message_id="m1") is False

    assert Purchase.objects.get(id=pid).status == "PENDING"  # the repeat changed nothing
    assert PurchaseStepEvent.objects.filter(message_id="m1").count() == 1


@pytest.mark.django_db
def test_a_step_of_an_unknown_purchase_is_recorded_anyway() -> None:
    pid = str(uuid.uuid4())

    assert record(pid, 1, PurchaseStatus.COMPLETED) is True

    assert PurchaseStepEvent.objects.get().purchase_id == uuid.UUID(pid)
    assert not Purchase.objects.exists()


def _listen() -> Any:
    conn = own_connection()
    with conn.cursor() as cursor:
        cursor.execute("LISTEN purchase_events")
    return conn


def _notifications(conn: Any, within: float) -> list[str]:
    deadline = time.monotonic() + within
    while not conn.notifies and time.monotonic() < deadline:
        select.select([conn], [], [], 0.05)
        conn.poll()
    return [n.payload for n in conn.notifies]


@pytest.mark.django_db(transaction=True)
def test_a_step_notifies_its_purchase_id_at_commit(products: FakeCatalog) -> None:
    products.add(1, price=100)
    pid = str(create().purchase.id)
    listener = _listen()
    try:
        with transaction.atomic():
            record(pid, 1, PurchaseStatus.PENDING)
            assert _notifications(listener, within=0.3) == []  # not before the commit

        assert _notifications(listener, within=5) == [pid]
    finally:
        listener.close()


# ------------------------------------------------------------------ purchase_steps_record


def step(
    purchase_id: str, sequence: int, status: PurchaseStatus, message_id: str
) -> tuple[str, PurchaseResult]:
    return message_id, PurchaseResult(
        purchase_id,
        Step.CREATE_PAYMENT,
        StepStatus.SUCCESS,
        purchase_status=status,
        sequence=sequence,
    )


@pytest.mark.django_db
def test_a_batch_of_steps_takes_three_statements_whatever_its_size() -> None:
    purchases = [str(purchase_row(7).id) for _ in range(3)]
    steps = [
        step(pid, sequence, PurchaseStatus.PENDING, f"{pid}-{sequence}")
        for pid in purchases
        for sequence in (1, 3, 2)
    ]

    with CaptureQueriesContext(connection) as queries:
        new = services.purchase_steps_record(steps=[*steps, steps[0]])

    assert new == [message_id for message_id, _ in steps]
    assert len(queries) == 3  # INSERT, UPDATE, pg_notify: no savepoint, nothing per row
    assert all(p.last_sequence == 3 for p in Purchase.objects.filter(id__in=purchases))


@pytest.mark.django_db
def test_a_batch_of_repeats_only_looks_them_up() -> None:
    pid = str(purchase_row(7).id)
    steps = [step(pid, 1, PurchaseStatus.PENDING, "m1"), step(pid, 2, PurchaseStatus.FAILED, "m2")]
    services.purchase_steps_record(steps=steps)
    Purchase.objects.filter(id=pid).update(status="PENDING", last_sequence=0)

    with CaptureQueriesContext(connection) as queries:
        assert services.purchase_steps_record(steps=steps) == []

    assert len(queries) == 1  # the INSERT that found them all recorded
    assert Purchase.objects.get(id=pid).status == "PENDING"  # the repeats changed nothing
    assert services.purchase_steps_record(steps=[]) == []


@pytest.mark.django_db(transaction=True)
def test_a_batch_notifies_each_purchase_with_a_new_step_once_at_commit() -> None:
    first, second, untouched = (str(purchase_row(7).id) for _ in range(3))
    unknown = str(uuid.uuid4())
    services.purchase_steps_record(steps=[step(untouched, 1, PurchaseStatus.PENDING, "old")])
    listener = _listen()
    try:
        with transaction.atomic():
            services.purchase_steps_record(
                steps=[
                    step(first, 1, PurchaseStatus.PENDING, "f1"),
                    step(second, 1, PurchaseStatus.PENDING, "s1"),
                    step(first, 2, PurchaseStatus.COMPLETED, "f2"),
                    step(unknown, 1, PurchaseStatus.COMPLETED, "u1"),
                    step(untouched, 1, PurchaseStatus.PENDING, "old"),  # a repeat: no news
                ]
            )
            assert _notifications(listener, within=0.3) == []  # not before the commit

        _notifications(listener, within=5)
        time.sleep(0.2)  # all of the commit's notifications, not only the first to arrive
        listener.poll()
        notified = [n.payload for n in listener.notifies]
    finally:
        listener.close()
    assert sorted(notified) == sorted([first, second, unknown])  # not the repeat's purchase


def test_lines_are_merged_in_order_of_first_appearance() -> None:
    merged = services.lines_merge([PurchaseLine(3, 1), PurchaseLine(1, 2), PurchaseLine(3, 4)])

    assert merged == [PurchaseLine(3, 5), PurchaseLine(1, 2)]
