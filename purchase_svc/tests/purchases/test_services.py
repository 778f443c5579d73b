"""Writes of the purchase service, in-process against the test database."""

from __future__ import annotations

import select
import threading
import time
import uuid
from typing import Any

import psycopg2
import pytest
from django.db import connection, connections, transaction

from common.events import PurchaseResult, PurchaseStatus, Step, StepStatus
from common.outbox.models import OutboxMessage
from purchase_svc.purchases import services
from purchase_svc.purchases.idempotency import IdempotencyKeyReused
from purchase_svc.purchases.models import Purchase, PurchaseStepEvent
from purchase_svc.purchases.services import PurchaseLine
from purchase_svc.tests.conftest import FakeCatalog


def create(customer_id: int = 7, key: str | None = None, fingerprint: str = "f") -> Any:
    return services.purchase_create(
        customer_id=customer_id,
        lines=[PurchaseLine(1, 2)],
        currency_code="VND",
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
def test_when_the_outbox_write_fails_no_purchase_is_left(
    products: FakeCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    products.add(1, price=100)

    def broken_outbox(**kwargs: Any) -> None:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(services, "outbox_enqueue", broken_outbox)

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
    params = dict(connection.get_connection_params())
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    conn = psycopg2.connect(**params)
    conn.autocommit = True
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


def test_lines_are_merged_in_order_of_first_appearance() -> None:
    merged = services.lines_merge([PurchaseLine(3, 1), PurchaseLine(1, 2), PurchaseLine(3, 4)])

    assert merged == [PurchaseLine(3, 5), PurchaseLine(1, 2)]
