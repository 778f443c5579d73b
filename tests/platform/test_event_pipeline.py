"""The saga's event path with the real processes: outbox relay -> Kafka -> consumer.

A PurchaseCreated written to purchase_db's outbox (as the purchase service will in
its transaction) is published by the purchase relay and starts a saga row in
orchestrator_db through the orchestrator's consumer; a malformed message on the
same topic goes to purchase.DLQ and does not stop the next one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Producer

from common.contract.topics import Topic
from common.topology import INFRA


def enqueue_purchase_created(conn: Any, purchase_id: str) -> None:
    body = {
        "purchase_id": purchase_id,
        "customer_id": 7,
        # No such product: the saga fails at once.
        "items": [{"product_id": 987654321, "quantity": 2, "unit_price": 1390}],
        "amount": 2780,
        "currency_code": "VND",
    }
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(
            "INSERT INTO outbox_message (topic, key, payload, headers, created_at)"
            " VALUES (%s, %s, %s, '{}', now())",
            [Topic.PURCHASE, purchase_id, json.dumps(body)],
        )
        cur.execute("SELECT pg_notify('outbox', '')")
        cur.execute("COMMIT")


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout}s")


def saga_row(conn: Any, purchase_id: str) -> Any:
    with conn.cursor() as cur:
        cur.execute("SELECT customer_id, state FROM saga WHERE purchase_id = %s", [purchase_id])
        return cur.fetchone()


def test_an_outbox_row_becomes_exactly_one_saga(live_db: Callable[[str], Any]) -> None:
    purchase_db, orchestrator_db = live_db("purchase"), live_db("orchestrator")
    purchase_id = str(uuid.uuid4())

    enqueue_purchase_created(purchase_db, purchase_id)

    customer_id, _state = wait_for(lambda: saga_row(orchestrator_db, purchase_id))
    assert customer_id == 7
    with purchase_db.cursor() as cur:
        cur.execute("SELECT published_at FROM outbox_message WHERE key = %s", [purchase_id])
        assert cur.fetchone()[0] is not None


def test_the_same_event_delivered_twice_starts_one_saga(live_db: Callable[[str], Any]) -> None:
    purchase_db, orchestrator_db = live_db("purchase"), live_db("orchestrator")
    purchase_id = str(uuid.uuid4())

    enqueue_purchase_created(purchase_db, purchase_id)
    enqueue_purchase_created(purchase_db, purchase_id)

    wait_for(lambda: saga_row(orchestrator_db, purchase_id))
    with purchase_db.cursor() as cur:
        wait_for(lambda: _published(cur, purchase_id) == 2)
    with orchestrator_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM saga WHERE purchase_id = %s", [purchase_id])
        assert cur.fetchone()[0] == 1


def _published(cur: Any, key: str) -> int:
    cur.execute(
        "SELECT count(*) FROM outbox_message WHERE key = %s AND published_at IS NOT NULL", [key]
    )
    return int(cur.fetchone()[0])


def test_a_malformed_message_goes_to_the_dlq_and_the_next_is_processed(
    live_db: Callable[[str], Any],
) -> None:
    purchase_db, orchestrator_db = live_db("purchase"), live_db("orchestrator")
    bad_key = f"malformed-{uuid.uuid4()}"
    good_id = str(uuid.uuid4())

    producer = Producer({"bootstrap.servers": INFRA.kafka_bootstrap})
    # Same key as the good message -> same partition, ahead of it in the log.
    producer.produce(Topic.PURCHASE, key=good_id.encode(), value=b"{not json")
    producer.produce(Topic.PURCHASE, key=bad_key.encode(), value=b'{"purchase_id": 1}')
    assert producer.flush(10) == 0
    enqueue_purchase_created(purchase_db, good_id)

    assert wait_for(lambda: saga_row(orchestrator_db, good_id))
    dlq = Consumer(
        {
            "bootstrap.servers": INFRA.kafka_bootstrap,
            "group.id": f"platform-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    dlq.subscribe([Topic.PURCHASE.dlq])
    reasons: dict[bytes | None, str] = {}
    deadline = time.monotonic() + 60
    while len(reasons) < 2 and time.monotonic() < deadline:
        for message in dlq.consume(500, 1.0):
            if message.error() or message.key() not in (good_id.encode(), bad_key.encode()):
                continue
            headers = dict(message.headers() or [])
            reason = headers.get("dlq-reason") or b""
            reasons[message.key()] = reason.decode() if isinstance(reason, bytes) else reason
    dlq.close()
    assert "not JSON" in reasons.get(good_id.encode(), "")
    assert "missing field" in reasons.get(bad_key.encode(), "")
