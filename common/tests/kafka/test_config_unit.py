"""librdkafka configuration of the consumers: what a process's environment decides."""

from __future__ import annotations

import pytest

from common.kafka.config import GROUP_INSTANCE_ENV, consumer_config
from deploy.local.programs import app_programs


def test_a_named_consumer_process_is_a_static_member_of_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(GROUP_INSTANCE_ENV, "orchestrator-consumer")

    config = consumer_config("orchestrator")

    assert config["group.instance.id"] == "orchestrator-consumer"
    assert config["group.id"] == "orchestrator"


def test_an_unnamed_consumer_joins_dynamically(monkeypatch: pytest.MonkeyPatch) -> None:
    # A test's own consumer, say: it must never take a platform process's id (the
    # broker would fence one of the two).
    monkeypatch.delenv(GROUP_INSTANCE_ENV, raising=False)

    assert "group.instance.id" not in consumer_config("orchestrator")


def test_each_consumer_process_of_the_platform_has_its_own_instance_id() -> None:
    ids = {
        p.name: p.environment[GROUP_INSTANCE_ENV]
        for p in app_programs(False, copies=1)
        if GROUP_INSTANCE_ENV in p.environment
    }

    assert set(ids) == {"purchase-consumer", "orchestrator-consumer"}
    assert len(set(ids.values())) == len(ids)
