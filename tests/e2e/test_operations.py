"""The operators' commands of docs/operations.md on the running system.

Given a purchase made through the edge, `saga list` and `saga show` find it with its
steps, and Flower (fed by the worker's task events) shows the task that ran it. Given a
poison message on the real `purchase` topic, `kafka_dlq list` shows it parked with its
reason, `kafka_dlq replay` sends it back (it returns, still poison, counted) and a
second replay does not resend it; a PurchaseCreated parked twice and replayed starts
exactly one saga.
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from typing import Any

import pytest
import requests
from confluent_kafka import Producer

from common.contract.topics import Topic
from common.kafka.consumer import DLQ_REASON, DLQ_SOURCE_TOPIC
from common.settings import REPO_ROOT
from common.testing import (
    Customer,
    create_product,
    manage,
    wait_for,
    wait_until,
    without_django_settings,
)
from common.topology import INFRA
from tests.e2e.conftest import purchase, register, wait_final

# The consumer parks a poison message within a second or two; generous for a busy machine.
PARKED_WITHIN = 60.0


@pytest.fixture(scope="module")
def completed(customer_for_ops: Customer, product_for_ops: int) -> str:
    purchase_id = purchase(customer_for_ops, [(product_for_ops, 2)])
    assert wait_final(customer_for_ops, purchase_id)["status"] == "COMPLETED"
    return purchase_id


@pytest.fixture(scope="module")
def customer_for_ops() -> Customer:
    return register("ops")


@pytest.fixture(scope="module")
def product_for_ops(staff: Customer, category_id: int) -> int:
    product = create_product(staff.token, category_id=category_id, retry=True, inventory=100)
    return int(product["id"])


def dlq(*args: str) -> Any:
    """`manage.py kafka_dlq ... --json` on the orchestrator, as an operator runs it."""
    return json.loads(manage("orchestrator", "kafka_dlq", *args, "--json"))


def produce(topic: str, key: str, value: bytes, headers: dict[str, str] | None = None) -> None:
    producer = Producer({"bootstrap.servers": INFRA.kafka_bootstrap})
    producer.produce(topic, key=key, value=value, headers=list((headers or {}).items()))
    assert producer.flush(10) == 0


def parked(key: str) -> list[dict[str, Any]]:
    """The messages with this key on purchase.DLQ (the newest few hundred)."""
    listing = dlq("list", Topic.PURCHASE, "--limit", "500")
    return [m for m in listing["messages"] if m["key"] == key]


# ------------------------------------------------------------------ sagas


def test_saga_list_shows_a_fresh_purchase_and_show_its_steps(completed: str) -> None:
    listed = manage("orchestrator", "saga", "list", "--state", "COMPLETED", "--limit", "200")
    shown = manage("orchestrator", "saga", "show", completed)

    row = next(line for line in listed.splitlines() if line.startswith(completed))
    assert row.split()[1:3] == ["COMPLETED", "CREATE_PAYMENT"]
    assert "state        COMPLETED" in shown
    log = [line.split()[1:3] for line in shown.splitlines() if line.startswith("+")]
    # Each step began and succeeded (a RETRY and another EXECUTE mark a transient fault).
    assert [row for row in log if row[1] not in ("EXECUTE", "RETRY")] == [
        ["UPDATE_PRODUCT_INVENTORY", "SUCCESS"],
        ["CREATE_ORDER", "SUCCESS"],
        ["CREATE_PAYMENT", "SUCCESS"],
    ]
    assert log[0] == ["UPDATE_PRODUCT_INVENTORY", "EXECUTE"]


def test_saga_show_refuses_an_unknown_purchase() -> None:
    result = subprocess.run(
        [".venv/bin/python", "orchestrator_svc/manage.py", "saga", "show", str(uuid.uuid4())],
        cwd=REPO_ROOT,
        env=without_django_settings(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no saga has the purchase id" in result.stderr


# ------------------------------------------------------------------ Celery


def flower_running() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", INFRA.flower_port), timeout=1):
            return True
    except OSError:
        return False


def test_flower_shows_the_task_that_ran_a_fresh_purchase(completed: str) -> None:
    if not flower_running():
        pytest.skip("Flower runs with make up OBSERVABILITY=1")

    def tasks_of_the_purchase() -> list[dict[str, Any]]:
        tasks = requests.get(
            f"{INFRA.flower_url}/api/tasks",
            params={"taskname": "orchestrator_svc.sagas.tasks.advance_sagas", "limit": "2000"},
            timeout=10,
        ).json()
        return [t for t in tasks.values() if completed in (t.get("args") or "")]

    found = wait_for(tasks_of_the_purchase, bool, within=30)

    assert found, "no advance_sagas task with the purchase id in Flower"
    task = found[0]
    # task-sent (from the consumer that enqueued it), received, started, succeeded.
    assert task["state"] == "SUCCESS"
    assert task["sent"] and task["received"] and task["started"] and task["succeeded"]


def test_the_celery_cli_of_the_runbook_reaches_the_worker() -> None:
    result = subprocess.run(
        [".venv/bin/celery", "-A", "orchestrator_svc.config", "inspect", "active", "--json"],
        cwd=REPO_ROOT,
        env=without_django_settings(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    replies = json.loads(result.stdout)
    # Each worker copy answers under its program's name (deploy/local/programs.py).
    assert any(name.startswith("orchestrator-worker@") for name in replies), replies


# ------------------------------------------------------------------ dead letters


def test_a_poison_message_is_listed_replayed_and_not_replayed_twice() -> None:
    key = f"ops-poison-{uuid.uuid4()}"
    produce(Topic.PURCHASE, key, b"{not json")

    first = wait_until(lambda: parked(key), within=PARKED_WITHIN)
    replay = dlq("replay", Topic.PURCHASE)
    back = wait_until(lambda: [m for m in parked(key) if m["replays"] == 1], within=PARKED_WITHIN)
    again = dlq("replay", Topic.PURCHASE)

    (original,) = first
    assert original["reason"].startswith("value is not JSON")
    assert original["source"].startswith(f"{Topic.PURCHASE}[")
    assert original["payload"] == "{not json"
    assert original["replays"] == 0
    sent = [(m["partition"], m["offset"]) for m in replay["replayed"] if m["key"] == key]
    assert sent == [(original["partition"], original["offset"])]
    # It is still poison: the consumer parked it again, with the count of replays.
    assert back[0]["reason"].startswith("value is not JSON")
    # The second replay starts after what the first one sent.
    resent = [(m["partition"], m["offset"]) for m in again["replayed"] if m["key"] == key]
    assert (original["partition"], original["offset"]) not in resent
    listing = dlq("list", Topic.PURCHASE, "--limit", "500")
    mine = {(m["partition"], m["offset"]): m["replayed"] for m in listing["messages"]}
    assert mine[(original["partition"], original["offset"])] is True


def test_a_parked_purchase_replayed_twice_starts_one_saga() -> None:
    """A PurchaseCreated that a since-fixed bug had parked: replay re-drives it, and the
    orchestrator's consumer dedupes by purchase id."""
    purchase_id = str(uuid.uuid4())
    body = {
        "purchase_id": purchase_id,
        "customer_id": 7,
        # No such product: the saga fails at its first step, a final state at once.
        "items": [{"product_id": 987654321, "quantity": 2, "unit_price": 1390}],
        "amount": 2780,
        "currency_code": "VND",
    }
    parked_headers = {DLQ_REASON: "a bug since fixed", DLQ_SOURCE_TOPIC: Topic.PURCHASE}
    for _ in range(2):
        produce(Topic.PURCHASE.dlq, purchase_id, json.dumps(body).encode(), parked_headers)

    report = dlq("replay", Topic.PURCHASE)

    assert [m["key"] for m in report["replayed"]].count(purchase_id) == 2

    def saga() -> dict[str, Any] | None:
        result = subprocess.run(
            [".venv/bin/python", "orchestrator_svc/manage.py", "saga", "show", purchase_id]
            + ["--json"],
            cwd=REPO_ROOT,
            env=without_django_settings(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        return json.loads(result.stdout) if result.returncode == 0 else None

    shown = wait_for(saga, lambda s: bool(s and s["state"] in ("FAILED", "COMPLETED")), within=60)

    assert shown and (shown["state"], shown["customer_id"]) == ("FAILED", 7)
    # Delivered twice, run once: its first step was refused and undone once, and its calls
    # counted 1, 2, ... (a transient fault on the way, e.g. another engineer's restart,
    # adds a RETRY and a new attempt; a second run would start again at attempt 1).
    steps = shown["steps"]
    outcomes = [(s["step"], s["status"]) for s in steps if s["status"] not in ("EXECUTE", "RETRY")]
    attempts = [s["attempt"] for s in steps if s["status"] == "EXECUTE"]
    assert outcomes == [
        ("UPDATE_PRODUCT_INVENTORY", "FAILED"),
        ("UPDATE_PRODUCT_INVENTORY", "ROLLBACK"),
    ]
    assert attempts == list(range(1, len(attempts) + 1))
