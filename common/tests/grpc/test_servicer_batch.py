"""`answer_batch`: a batch of single calls in one transaction, a savepoint per item.

What needs no database runs here with a stand-in for the servicer context. The rest
runs on SQLite in a fresh interpreter (Django settings are configured once per process
and this suite runs without them), which reports what it saw; the tests read it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import grpc
import pytest

from common.errors import GRPC_ERROR_CODE_METADATA, ApplicationError, ErrorCode
from common.grpc.servicer import MAX_BATCH_ITEMS, ItemResult, answer_batch, by_purchase_id
from common.testing import run_python_json
from saga_proto import order_pb2

SERVICE = "test.BatchService"
logger = logging.getLogger("test.batch")


class Aborted(Exception):
    """What the stand-in context raises where grpc's would end the call."""


class FakeContext:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing: tuple[tuple[str, str], ...] = ()

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailing = metadata

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted


# ------------------------------------------------------------ no database


def test_an_item_result_carries_the_status_its_single_call_would_end_with() -> None:
    refused = ItemResult[str](error=ApplicationError(ErrorCode.INSUFFICIENT_STOCK, "1 left."))
    accepted = ItemResult(reply="the reply")

    assert (refused.code, refused.message, refused.error_code, refused.reply) == (
        grpc.StatusCode.FAILED_PRECONDITION.value[0],
        "1 left.",
        "insufficient_stock",
        None,
    )
    assert (accepted.code, accepted.message, accepted.error_code, accepted.reply) == (
        0,
        "",
        "",
        "the reply",
    )


def test_a_batch_over_the_cap_is_refused_whole_before_any_item_or_database_work() -> None:
    context: Any = FakeContext()
    handled: list[int] = []

    with pytest.raises(Aborted):
        answer_batch(
            context,
            list(range(MAX_BATCH_ITEMS + 1)),
            handled.append,
            service=SERVICE,
            logger=logger,
        )

    assert context.code is grpc.StatusCode.INVALID_ARGUMENT
    assert dict(context.trailing)[GRPC_ERROR_CODE_METADATA] == "invalid_input"
    assert handled == []


def test_commands_sort_by_the_canonical_text_of_their_purchase_id_malformed_ones_first() -> None:
    low, high = uuid.UUID(int=1), uuid.UUID(int=2**127)
    commands = [
        order_pb2.CancelOrderRequest(purchase_id=purchase_id)
        for purchase_id in [str(high).upper(), "not-a-uuid", low.hex, ""]
    ]

    ordered = sorted(commands, key=by_purchase_id)

    assert [c.purchase_id for c in ordered] == ["not-a-uuid", "", low.hex, str(high).upper()]


# ---------------------------------------------------------- on a database

SCENARIOS = """
import json
import logging

import django
from django.conf import settings

settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=[],
    USE_TZ=True,
)
django.setup()

import grpc
from django.db import DatabaseError, OperationalError, connection, transaction

from common.errors import ApplicationError, ErrorCode
from common.grpc.servicer import answer_batch


class Aborted(Exception):
    pass


class Context:
    def __init__(self):
        self.status = None
        self.trailing = ()

    def set_trailing_metadata(self, metadata):
        self.trailing = list(metadata)

    def abort(self, code, details):
        self.status = [code.name, details]
        raise Aborted


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append([record.levelname, record.getMessage()])


logger = logging.getLogger("batch")
logger.setLevel(logging.INFO)
records = Records()
logger.addHandler(records)

with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE item (name TEXT PRIMARY KEY)")


def rows():
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM item ORDER BY name")
        return [name for (name,) in cursor.fetchall()]


hooks = []  # (name, whether the batch's transaction was still open when it ran)


def handle(name):
    # Writes its row and registers a hook, then refuses when the name says so.
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO item (name) VALUES (%s)", [name])
    transaction.on_commit(lambda: hooks.append([name, connection.in_atomic_block]))
    if name.startswith("refuse"):
        raise ApplicationError(ErrorCode.INSUFFICIENT_STOCK, f"no stock for {name}")
    if name.startswith("fail"):
        raise ApplicationError(ErrorCode.UNAVAILABLE, f"{name} cannot be done now")
    if name == "db-down":
        raise OperationalError("server closed the connection")
    if name == "db-error":
        raise DatabaseError("deadlock detected")
    return f"reply to {name}"


def run(items, **kwargs):
    context = Context()
    before = set(rows())
    handled = []
    hooks.clear()
    records.lines.clear()

    def one(name):
        handled.append(name)
        hooks_before = len(hooks)
        reply = handle(name)
        assert len(hooks) == hooks_before  # nothing runs before the batch commits
        return reply

    try:
        results = answer_batch(
            context, items, one, service="test.BatchService", logger=logger, **kwargs
        )
        outcome = [[r.code, r.message, r.error_code, r.reply] for r in results]
    except Aborted:
        outcome = None
    except Exception as exc:
        outcome = ["raised", type(exc).__name__]
    return {
        "results": outcome,
        "status": context.status,
        "trailing": context.trailing,
        "handled": handled,
        "rows": sorted(set(rows()) - before),  # what this batch left
        "hooks": list(hooks),
        "logs": list(records.lines),
    }


out = {}
out["mixed"] = run(["a1", "refuse-b", "a2", "fail-c"])
out["sorted"] = run(
    ["s3", "s1", "refuse-s0", "s2"],
    sort_key=lambda name: name[-1],
    lock_first=lambda: hooks.append(["lock", connection.in_atomic_block]),
)
out["db_down"] = run(["d1", "db-down", "d2"])
out["db_error"] = run(["e1", "db-error"])
out["db_error_left_to_grpc"] = run(["f1", "db-down"], database_errors=False)
out["in_transaction_after"] = connection.in_atomic_block
print(json.dumps(out))
"""

FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    out: dict[str, Any] = run_python_json(SCENARIOS)
    return out


def test_a_refused_item_answers_its_status_while_the_others_go_on(
    report: dict[str, Any],
) -> None:
    mixed = report["mixed"]

    assert mixed["status"] is None
    assert mixed["results"] == [
        [0, "", "", "reply to a1"],
        [FAILED_PRECONDITION, "no stock for refuse-b", "insufficient_stock", None],
        [0, "", "", "reply to a2"],
        [UNAVAILABLE, "fail-c cannot be done now", "unavailable", None],
    ]


def test_a_refused_item_s_writes_and_hooks_are_undone_and_the_rest_commit_once(
    report: dict[str, Any],
) -> None:
    mixed = report["mixed"]

    assert mixed["rows"] == ["a1", "a2"]
    # Each accepted item's hook ran once, after the commit (outside any transaction).
    assert mixed["hooks"] == [["a1", False], ["a2", False]]


def test_each_refusal_is_logged_as_a_single_call_s_would_be(report: dict[str, Any]) -> None:
    assert report["mixed"]["logs"] == [
        ["INFO", "test.BatchService refused: insufficient_stock no stock for refuse-b"],
        ["WARNING", "test.BatchService failed: unavailable fail-c cannot be done now"],
    ]


def test_items_are_handled_in_sort_key_order_after_lock_first_and_answered_in_request_order(
    report: dict[str, Any],
) -> None:
    ordered = report["sorted"]

    assert ordered["handled"] == ["refuse-s0", "s1", "s2", "s3"]
    assert [r[3] for r in ordered["results"]] == ["reply to s3", "reply to s1", None, "reply to s2"]
    assert ordered["results"][2][2] == "insufficient_stock"
    # lock_first ran inside the batch's transaction, before the first item.
    assert ordered["hooks"][0] == ["lock", True]
    assert ordered["rows"] == ["s1", "s2", "s3"]


def test_a_database_that_cannot_answer_fails_the_whole_call_unavailable(
    report: dict[str, Any],
) -> None:
    down = report["db_down"]

    assert down["results"] is None
    assert down["status"] == ["UNAVAILABLE", "Database unavailable."]
    assert down["trailing"] == [[GRPC_ERROR_CODE_METADATA, "unavailable"]]
    # Nothing of the batch stays, not even the items before the failure; no hook ran.
    assert (down["handled"], down["rows"], down["hooks"]) == (["d1", "db-down"], [], [])


def test_another_database_error_fails_the_whole_call_internal(report: dict[str, Any]) -> None:
    failed = report["db_error"]

    assert failed["status"] == ["INTERNAL", "Internal error."]
    assert (failed["rows"], failed["hooks"]) == ([], [])


def test_without_database_errors_the_error_is_left_to_grpc_after_the_rollback(
    report: dict[str, Any],
) -> None:
    left = report["db_error_left_to_grpc"]

    assert left["results"] == ["raised", "OperationalError"]
    assert (left["status"], left["rows"], left["hooks"]) == (None, [], [])
    assert report["in_transaction_after"] is False
