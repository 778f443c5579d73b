"""Flower in docker-compose.yml: Celery's monitor on the workers' own broker, pinned,
health-checked, answering on this machine only at the topology's port."""

from __future__ import annotations

from typing import Any

from common.topology import INFRA
from tests.deploy.conftest import services_with_role


def test_flower_runs_a_pinned_image_with_a_health_check(compose: dict[str, Any]) -> None:
    spec = compose["services"]["flower"]

    assert spec["image"].startswith("mher/flower:2.")
    assert spec["restart"] == "unless-stopped"
    assert spec["healthcheck"]["test"][:2] == ["CMD", "wget"]
    assert spec["healthcheck"]["test"][-1].endswith(":5555/healthcheck")
    assert spec["labels"]["saga.role"] == "tool"
    assert spec["ports"] == [f"127.0.0.1:{INFRA.flower_port}:5555"]


def test_flower_watches_the_broker_the_celery_processes_use(compose: dict[str, Any]) -> None:
    spec = compose["services"]["flower"]
    celery = [
        s for s in services_with_role(compose, "process").values() if s["command"][0] == "celery"
    ]

    brokers = {s["environment"]["CELERY_BROKER_URL"] for s in celery}
    assert celery and len(brokers) == 1
    assert f"--broker={brokers.pop()}" in spec["command"]
    assert spec["depends_on"]["redis-broker"]["condition"] == "service_healthy"
    # Its API (what the runbook's curl reads) answers without a login.
    assert spec["environment"]["FLOWER_UNAUTHENTICATED_API"] == "true"
