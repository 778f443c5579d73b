"""The saga's definition is checked when any process starts (`manage.py check`)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from orchestrator_svc.sagas import checks
from orchestrator_svc.sagas.steps import PURCHASE_STEPS

GOOD = {
    "SAGA_STEP_DEADLINE_SECONDS": 5,
    "SAGA_STEP_RETRY_WINDOW_SECONDS": 300,
    "SAGA_STEP_RETRY_WINDOWS": {"CREATE_PAYMENT": 600},
    "SAGA_COMPENSATION_RETRY_WINDOW_SECONDS": 86400,
    "SAGA_LEASE_SECONDS": 15,
    "SAGA_STALL_SECONDS": 15,
    "SAGA_BATCH_SIZE": 100,
    "SAGA_CALL_CONCURRENCY": 64,
    "SAGA_CIRCUIT_FAILURES": 5,
    "SAGA_CIRCUIT_OPEN_SECONDS": 5,
    "SAGA_RETRY_BASE_SECONDS": 2,
    "SAGA_RETRY_MAX_DELAY_SECONDS": 30,
    "SAGA_MAX_ATTEMPTS": 0,
    "SAGA_MAX_COMPENSATION_ATTEMPTS": 0,
    "SAGA_DEADLINE_SECONDS": 3600,
}


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


def test_the_purchase_saga_and_the_default_settings_pass() -> None:
    assert checks.check_steps(PURCHASE_STEPS) == []
    assert checks.check_budgets(SimpleNamespace(**GOOD)) == []


def test_a_step_without_a_compensation_or_named_twice_is_an_error() -> None:
    broken = (
        replace(PURCHASE_STEPS[0], compensation=None),  # type: ignore[arg-type]
        PURCHASE_STEPS[1],
        replace(PURCHASE_STEPS[2], step=PURCHASE_STEPS[1].step, participant=""),
    )
    assert ids(checks.check_steps(broken)) == ["sagas.E005", "sagas.E003", "sagas.E006"]
    assert ids(checks.check_steps(())) == ["sagas.E001"]


def test_a_step_the_purchase_service_cannot_parse_is_an_error() -> None:
    unknown = replace(PURCHASE_STEPS[0], step=cast(Any, "SHIP_IT"))
    assert ids(checks.check_steps((unknown,))) == ["sagas.E002"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"SAGA_STEP_DEADLINE_SECONDS": 0}, ["sagas.E011"]),
        ({"SAGA_RETRY_BASE_SECONDS": -1}, ["sagas.E012"]),
        ({"SAGA_BATCH_SIZE": "many"}, ["sagas.E010"]),
        ({"SAGA_STEP_RETRY_WINDOWS": {"CREATE_PAYMENT": 0}}, ["sagas.E013"]),
        ({"SAGA_LEASE_SECONDS": 5}, ["sagas.E014"]),
        ({"SAGA_COMPENSATION_RETRY_WINDOW_SECONDS": 30}, ["sagas.E015"]),
        # Eight calls may be spent in 1+2+4+8+15+15+15 = 60 s: just enough; three are not.
        ({"SAGA_MAX_COMPENSATION_ATTEMPTS": 8}, []),
        ({"SAGA_MAX_COMPENSATION_ATTEMPTS": 3}, ["sagas.E016"]),
        ({"SAGA_DEADLINE_SECONDS": 0}, ["sagas.E011"]),
        # A deadline within the longest step window (600 s) is said, not refused.
        ({"SAGA_DEADLINE_SECONDS": 600}, ["sagas.W017"]),
        ({"SAGA_DEADLINE_SECONDS": 601}, []),
    ],
)
def test_budgets_must_be_positive_and_consistent(
    changes: dict[str, Any], expected: list[str]
) -> None:
    assert ids(checks.check_budgets(SimpleNamespace(**{**GOOD, **changes}))) == expected


def test_manage_py_check_refuses_a_broken_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = (replace(PURCHASE_STEPS[0], compensation=None), *PURCHASE_STEPS[1:])  # type: ignore[arg-type]
    monkeypatch.setattr(checks, "PURCHASE_STEPS", broken)

    with pytest.raises(SystemCheckError, match="sagas.E005"):
        call_command("check")
