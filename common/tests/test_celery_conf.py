"""Celery's shared settings: task events on by default, off by one variable."""

from __future__ import annotations

import pytest

from common.celery_conf import celery_settings


def test_task_events_are_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CELERY_TASK_EVENTS", raising=False)

    settings = celery_settings()

    assert settings["CELERY_WORKER_SEND_TASK_EVENTS"] is True
    assert settings["CELERY_TASK_SEND_SENT_EVENT"] is True


def test_celery_task_events_0_turns_them_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_TASK_EVENTS", "0")

    settings = celery_settings()

    assert settings["CELERY_WORKER_SEND_TASK_EVENTS"] is False
    assert settings["CELERY_TASK_SEND_SENT_EVENT"] is False
