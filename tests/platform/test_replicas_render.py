"""What `make up REPLICAS=n` renders (docs/adr/0023): the copies of each process, their
ports and names, beat alone, and Traefik balancing over the copies. Unit tests of the
render functions: no platform needed."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from common.kafka.config import GROUP_INSTANCE_ENV
from common.topology import SERVICES
from deploy.local import programs, render


def by_name(copies: int) -> dict[str, programs.Program]:
    return {p.name: p for p in programs.app_programs(False, copies=copies)}


def test_one_copy_is_the_platform_as_it_always_was() -> None:
    names = set(by_name(1))

    assert "purchase-http" in names and "orchestrator-beat" in names
    assert not any(name.endswith("-2") for name in names)


def test_two_copies_of_every_process_but_beat() -> None:
    one, two = by_name(1), by_name(2)

    for name, program in one.items():
        copy = f"{name}-2"
        if name == "orchestrator-beat":
            assert copy not in two  # its schedule would fire twice
        else:
            assert two[copy].replica == 2 and two[copy].service == program.service
    assert len(two) == 2 * len(one) - 1


def test_each_copy_listens_on_its_own_port() -> None:
    two = by_name(2)

    for svc in SERVICES.values():
        assert two[f"{svc.name}-http"].address == f"127.0.0.1:{svc.http_port}"
        assert two[f"{svc.name}-http-2"].address == f"127.0.0.1:{svc.http_port + 100}"
        assert f"--bind 127.0.0.1:{svc.http_port + 100}" in two[f"{svc.name}-http-2"].command
        if svc.grpc_port:
            assert f"grpcserve --port {svc.grpc_port + 100}" in two[f"{svc.name}-grpc-2"].command
            # Copy 1 listens where its settings say, as the Docker image does.
            assert "--port" not in two[f"{svc.name}-grpc"].command
    addresses = [p.address for p in two.values() if p.address]
    assert len(addresses) == len(set(addresses))


def test_every_consumer_and_worker_copy_has_its_own_identity() -> None:
    two = by_name(2)

    instance_ids = [
        p.environment[GROUP_INSTANCE_ENV]
        for p in two.values()
        if GROUP_INSTANCE_ENV in p.environment
    ]
    assert len(instance_ids) == 4  # two consumers, two copies each
    assert len(set(instance_ids)) == len(instance_ids)
    workers = [p.command for p in two.values() if p.name.startswith("orchestrator-worker")]
    assert sorted(c.split("--hostname ")[1] for c in workers) == [
        "orchestrator-worker-2@%h",
        "orchestrator-worker@%h",
    ]


def test_traefik_balances_over_the_copies_and_checks_them() -> None:
    dynamic: dict[str, Any] = json.loads(render.traefik_dynamic(copies=2))["http"]

    for svc in SERVICES.values():
        balancer = dynamic["services"][f"{svc.name}-http"]["loadBalancer"]
        assert [s["url"] for s in balancer["servers"]] == [
            f"http://127.0.0.1:{svc.http_port}",
            f"http://127.0.0.1:{svc.http_port + 100}",
        ]
        assert balancer["healthCheck"]["path"] == f"{svc.route_prefixes[0]}/healthz"
        if svc.grpc_port:
            grpc = dynamic["services"][f"{svc.name}-grpc"]["loadBalancer"]
            assert len(grpc["servers"]) == 2 and grpc["healthCheck"]["mode"] == "grpc"
        buffering = dynamic["middlewares"][f"{svc.name}-body-limit"]["buffering"]
        assert "IsNetworkError()" in buffering["retryExpression"]


def test_a_single_copy_is_not_health_checked_over_http() -> None:
    dynamic: dict[str, Any] = json.loads(render.traefik_dynamic(copies=1))["http"]

    for svc in SERVICES.values():
        assert "healthCheck" not in dynamic["services"][f"{svc.name}-http"]["loadBalancer"]


def test_make_up_remembers_the_count_until_it_is_given_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(programs, "REPLICAS_FILE", tmp_path / "replicas")
    monkeypatch.delenv("REPLICAS", raising=False)
    assert programs.replicas() == 1  # never chosen: one copy

    monkeypatch.setenv("REPLICAS", "2")
    assert programs.choose_replicas() == 2
    monkeypatch.delenv("REPLICAS")
    assert programs.replicas() == 2  # make restart, make status, make chaos
    assert programs.choose_replicas() == 2  # a plain make up keeps what runs
    monkeypatch.setenv("REPLICAS", "1")
    assert programs.choose_replicas() == 1
    monkeypatch.delenv("REPLICAS")
    assert programs.replicas() == 1


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_a_bad_count_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("REPLICAS", bad)
    with pytest.raises(SystemExit, match="REPLICAS"):
        programs.replicas()


def test_no_two_copies_share_a_name() -> None:
    names = Counter(p.name for p in programs.app_programs(False, copies=3))
    assert max(names.values()) == 1
