"""What a saga shows to the people who run it: its metrics and its spans.

Counters move once per committed transition (never for a rolled-back one); each call
is a span named after its step and whether it executes or compensates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from common.testing import metric_value, recorded_spans
from orchestrator_svc.sagas.models import SagaState
from orchestrator_svc.tests.fakes import FakeServices, run_to_rest

pytestmark = pytest.mark.django_db

STEPS = ["UPDATE_PRODUCT_INVENTORY", "CREATE_ORDER", "CREATE_PAYMENT"]
COUNTERS = ("started", "completed", "failed", "needs_attention")


def attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def snapshot() -> dict[str, float]:
    values = {name: metric_value(f"saga_{name}_total") for name in COUNTERS}
    for step in STEPS:
        for action in ("execute", "compensate"):
            for outcome in ("ok", "refused", "error"):
                key = f"{step}/{action}/{outcome}"
                values[key] = metric_value(
                    "saga_step_duration_seconds_count", step=step, action=action, outcome=outcome
                )
            values[f"retry {step}/{action}"] = metric_value(
                "saga_step_retries_total", step=step, action=action
            )
        values[f"compensated {step}"] = metric_value("saga_compensations_total", step=step)
    return values


def moved(before: dict[str, float]) -> dict[str, float]:
    after = snapshot()
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def run_committed(
    capture: Any, start_saga: Callable[..., str], fake: FakeServices
) -> tuple[str, Any]:
    # The test's transaction never commits: run the on-commit callbacks as they come.
    with capture(execute=True):
        purchase_id = start_saga()
        return purchase_id, run_to_rest(purchase_id, fake)


def test_a_completed_saga_counts_a_start_a_completion_and_three_steps(
    start_saga: Callable[..., str],
    fake: FakeServices,
    django_capture_on_commit_callbacks: Any,
) -> None:
    spans = recorded_spans()
    before = snapshot()

    purchase_id, result = run_committed(django_capture_on_commit_callbacks, start_saga, fake)

    assert result.state == SagaState.COMPLETED
    assert moved(before) == {
        "started": 1,
        "completed": 1,
        **{f"{step}/execute/ok": 1 for step in STEPS},
    }
    calls = [s for s in spans.get_finished_spans() if s.name.startswith("saga.execute")]
    assert [s.name for s in calls] == [f"saga.execute {step}" for step in STEPS]
    assert {attrs(s)["saga.purchase_id"] for s in calls} == {purchase_id}
    assert {attrs(s)["saga.outcome"] for s in calls} == {"ok"}
    advance = next(s for s in spans.get_finished_spans() if s.name == "saga.advance")
    assert {s.parent.span_id for s in calls if s.parent} == {advance.context.span_id}


def test_a_compensated_saga_counts_the_refusal_and_each_compensation(
    start_saga: Callable[..., str],
    fake: FakeServices,
    django_capture_on_commit_callbacks: Any,
) -> None:
    spans = recorded_spans()
    fake.fail("create_payment", grpc.StatusCode.FAILED_PRECONDITION)
    before = snapshot()

    _, result = run_committed(django_capture_on_commit_callbacks, start_saga, fake)

    assert result.state == SagaState.FAILED
    assert moved(before) == {
        "started": 1,
        "failed": 1,
        "UPDATE_PRODUCT_INVENTORY/execute/ok": 1,
        "CREATE_ORDER/execute/ok": 1,
        "CREATE_PAYMENT/execute/refused": 1,
        **{f"{step}/compensate/ok": 1 for step in STEPS},
        **{f"compensated {step}": 1 for step in STEPS},
    }
    compensations = [s for s in spans.get_finished_spans() if attrs(s).get("saga.compensation")]
    assert [s.name for s in compensations] == [f"saga.compensate {step}" for step in STEPS[::-1]]
    refused = next(s for s in spans.get_finished_spans() if s.name == "saga.execute CREATE_PAYMENT")
    assert attrs(refused)["saga.outcome"] == "refused"
    assert not refused.status.is_ok


def test_a_transient_fault_counts_a_retry_and_an_error_call(
    start_saga: Callable[..., str],
    fake: FakeServices,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    settings.SAGA_RETRY_BASE_SECONDS = 0.01
    fake.fail("create_order", grpc.StatusCode.UNAVAILABLE)
    before = snapshot()

    _, result = run_committed(django_capture_on_commit_callbacks, start_saga, fake)

    assert result.state == SagaState.COMPLETED
    changes = moved(before)
    assert changes["retry CREATE_ORDER/execute"] == 1
    assert changes["CREATE_ORDER/execute/error"] == 1
    assert changes["CREATE_ORDER/execute/ok"] == 1
    assert changes["completed"] == 1


def test_a_transition_that_never_commits_counts_no_saga_event(
    start_saga: Callable[..., str], fake: FakeServices
) -> None:
    before = snapshot()

    # No capture: the test's transaction never commits. (Call durations are observed
    # as each call ends, so only they move.)
    run_to_rest(start_saga(), fake)

    assert {k: v for k, v in moved(before).items() if not k.endswith("/ok")} == {}
