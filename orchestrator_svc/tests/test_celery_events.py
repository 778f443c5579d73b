"""The orchestrator's Celery app sends task events, so `celery events` and Flower see
each task: sent (by whoever enqueues it), received, started, succeeded or failed."""

from __future__ import annotations

from orchestrator_svc.config.celery import app


def test_the_worker_sends_task_events_and_enqueuers_send_the_sent_event() -> None:
    assert app.conf.worker_send_task_events is True
    assert app.conf.task_send_sent_event is True
