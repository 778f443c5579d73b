"""`manage.py saga list` and `saga show`: where sagas stand, and what each step did."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from io import StringIO

import grpc
import pytest
from django.core.management import CommandError, call_command

from orchestrator_svc.sagas import services
from orchestrator_svc.sagas.management.commands.saga import duration_text, short_error
from orchestrator_svc.tests.fakes import FakeServices, run_to_rest, saga_row

pytestmark = pytest.mark.django_db


def saga(*args: str) -> str:
    out = StringIO()
    call_command("saga", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def failed_and_completed(start_saga: Callable[..., str]) -> tuple[str, str]:
    """A saga refused at CREATE_PAYMENT (compensated), then one that completed."""
    failed = start_saga(customer_id=5)
    fake = FakeServices()
    fake.fail("create_payment", grpc.StatusCode.FAILED_PRECONDITION)
    run_to_rest(failed, fake)
    completed = start_saga(customer_id=6)
    run_to_rest(completed, FakeServices())
    return failed, completed


def test_list_shows_one_line_per_saga_newest_first(
    failed_and_completed: tuple[str, str],
) -> None:
    failed, completed = failed_and_completed

    header, *rows = saga("list").splitlines()

    assert header.split() == [
        "PURCHASE_ID", "STATE", "STEP", "ATTEMPT", "AGE", "NEXT_RUN", "LAST_ERROR"
    ]  # fmt: skip
    assert [row.split()[:2] for row in rows] == [[completed, "COMPLETED"], [failed, "FAILED"]]
    assert rows[0].split()[2] == "CREATE_PAYMENT"
    assert "FAILED_PRECONDITION" in rows[1]


def test_list_filters_by_states_and_limits(
    failed_and_completed: tuple[str, str], start_saga: Callable[..., str]
) -> None:
    failed, completed = failed_and_completed
    running = start_saga(customer_id=7)

    only_failed = saga("list", "--state", "FAILED").splitlines()[1:]
    two_states = saga("list", "--state", "FAILED", "--state", "STARTED").splitlines()[1:]
    newest = saga("list", "--limit", "1").splitlines()[1:]

    assert [row.split()[0] for row in only_failed] == [failed]
    assert [row.split()[0] for row in two_states] == [running, failed]
    assert [row.split()[0] for row in newest] == [running]
    assert "in " in two_states[0] or "overdue " in two_states[0]  # a live saga is due


def test_list_as_json_has_the_staff_apis_shape(failed_and_completed: tuple[str, str]) -> None:
    failed, _ = failed_and_completed

    body = json.loads(saga("list", "--state", "FAILED", "--json"))

    assert [(s["purchase_id"], s["state"], s["customer_id"]) for s in body] == [
        (failed, "FAILED", 5)
    ]


def test_show_lists_every_transition_with_attempts_durations_and_errors(
    failed_and_completed: tuple[str, str],
) -> None:
    failed, _ = failed_and_completed

    text = saga("show", failed)

    assert f"purchase     {failed}" in text
    assert "state        FAILED" in text
    log = [line.split()[:4] for line in text.splitlines() if line.startswith("+")]
    assert [(step, status) for _at, step, status, _attempt in log] == [
        ("UPDATE_PRODUCT_INVENTORY", "EXECUTE"),
        ("UPDATE_PRODUCT_INVENTORY", "SUCCESS"),
        ("CREATE_ORDER", "EXECUTE"),
        ("CREATE_ORDER", "SUCCESS"),
        ("CREATE_PAYMENT", "EXECUTE"),
        ("CREATE_PAYMENT", "FAILED"),
        ("CREATE_PAYMENT", "ROLLBACK"),
        ("CREATE_ORDER", "ROLLBACK"),
        ("UPDATE_PRODUCT_INVENTORY", "ROLLBACK"),
    ]
    payment_failed = next(line for line in text.splitlines() if " FAILED " in line)
    assert "FAILED_PRECONDITION" in payment_failed
    assert "CREATE_PAYMENT: 2 calls" in text
    assert "9 transitions over" in text


def test_show_as_json_carries_the_steps(failed_and_completed: tuple[str, str]) -> None:
    _, completed = failed_and_completed

    body = json.loads(saga("show", completed, "--json"))

    assert body["state"] == "COMPLETED"
    assert [s["status"] for s in body["steps"]].count("SUCCESS") == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", str(uuid.uuid4())), "no saga"),
        (("show", "not-a-uuid"), "no saga"),
        (("show",), "exactly one"),
        (("list", "--limit", "0"), "at least 1"),
        (("list", str(uuid.uuid4())), "takes no PURCHASE_ID"),
    ],
)
def test_bad_input_is_refused_with_a_message(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        saga(*args)


def test_an_unknown_state_is_refused() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        saga("list", "--state", "SLEEPING")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (42, "42s"), (425, "7m05s"), (11520, "3h12m"), (187200, "2d04h")],
)
def test_durations_read_as_people_write_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_a_long_error_is_cut_to_its_first_line() -> None:
    assert short_error("UNAVAILABLE: gone\ntraceback...") == "UNAVAILABLE: gone"
    assert short_error("x" * 100, width=10) == "xxxxxxx..."
    assert short_error("") == "-"


def test_cancel_stops_sagas_going_forward_and_refuses_the_others(
    start_saga: Callable[..., str], enqueued: list[str]
) -> None:
    running, done = start_saga(customer_id=8), start_saga(customer_id=9)
    run_to_rest(done, FakeServices())

    with pytest.raises(CommandError, match="there is nothing to cancel"):
        saga("cancel", running, done)  # the first is cancelled, the second refused

    assert run_to_rest(running, FakeServices()).state == "CANCELLED"
    states = {row.split()[0]: row.split()[1] for row in saga("list").splitlines()[1:]}
    assert states == {running: "CANCELLED", done: "COMPLETED"}
    shown = saga("show", running)
    assert "state        CANCELLED" in shown
    assert "cancel       asked by staff at" in shown
    assert "deadline     " in shown and "(in " in shown


def test_list_says_why_a_saga_stopped_going_forward(
    start_saga: Callable[..., str], enqueued: list[str]
) -> None:
    cancelling = start_saga(customer_id=10)
    services.saga_cancel(purchase_id=cancelling)
    late = start_saga(customer_id=11)
    row = saga_row(late)
    row.deadline_at = row.created_at
    row.save()
    run_to_rest(late, FakeServices())

    states = {line.split()[0]: line.split()[1] for line in saga("list").splitlines()[1:]}

    assert states[cancelling] == "STARTED:cancelling"
    assert states[late] == "FAILED:deadline"
    assert "deadline     " in saga("show", late) and "passed" in saga("show", late)
