"""Observability in docker-compose.yml: Zipkin, Prometheus and Grafana run with health
checks and answer on this machine only; every service process sends its traces to
Zipkin and writes its metrics where its HTTP container's /metrics finds them; Prometheus
scrapes each service's HTTP container and Traefik."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
import yaml

from common.topology import INFRA, SERVICES
from deploy.docker.generate import PROMETHEUS_CONFIG
from tests.deploy.conftest import REPO, services_with_role

TOOLS = ("zipkin", "prometheus", "grafana")


def service_of(container: str) -> str:
    return next(s for s in SERVICES if container.startswith(f"{s}-"))


def mounts(spec: dict[str, Any]) -> dict[str, str]:
    """Container path -> source of a container's volumes."""
    return {m.split(":")[1]: m.split(":")[0] for m in spec.get("volumes", [])}


@pytest.mark.parametrize("name", TOOLS)
def test_each_tool_runs_a_pinned_image_with_a_health_check(
    compose: dict[str, Any], name: str
) -> None:
    spec = compose["services"][name]
    image, _, tag = spec["image"].partition(":")
    assert tag and tag != "latest", spec["image"]
    assert spec["restart"] == "unless-stopped"
    assert spec["healthcheck"]["test"][0] == "CMD"
    assert spec["labels"]["saga.role"] == "tool"


@pytest.mark.parametrize(
    ("name", "host_port", "container_port"),
    [
        ("zipkin", INFRA.zipkin_port, 9411),
        ("prometheus", INFRA.prometheus_port, 9090),
        ("grafana", INFRA.grafana_port, 3000),
    ],
)
def test_each_ui_answers_on_this_machine_only_at_the_topologys_port(
    compose: dict[str, Any], name: str, host_port: int, container_port: int
) -> None:
    assert compose["services"][name]["ports"] == [f"127.0.0.1:{host_port}:{container_port}"]


def test_the_images_are_the_intended_major_versions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["zipkin"]["image"].startswith("openzipkin/zipkin:3.")
    assert services["prometheus"]["image"].startswith("prom/prometheus:v3.")
    assert services["grafana"]["image"].startswith("grafana/grafana:")


def test_prometheus_reads_the_committed_configuration(compose: dict[str, Any]) -> None:
    spec = compose["services"]["prometheus"]
    config_file = next(
        a.split("=", 1)[1] for a in spec["command"] if a.startswith("--config.file=")
    )
    source = mounts(spec)[config_file]
    assert (REPO / source).samefile(PROMETHEUS_CONFIG)
    assert "prometheus-data" in mounts(spec).values()


def test_prometheus_scrapes_each_services_http_container_and_traefik(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {c["job_name"]: c["static_configs"][0]["targets"] for c in config["scrape_configs"]}
    for svc in SERVICES.values():
        (target,) = targets[svc.name]
        host, _, port = target.partition(":")
        assert host == f"{svc.name}-http" and host in services
        assert f"0.0.0.0:{port}" in services[host]["command"]
    (traefik,) = targets["traefik"]
    host, _, port = traefik.partition(":")
    env = services[host]["environment"]
    entrypoint = env["TRAEFIK_METRICS_PROMETHEUS_ENTRYPOINT"]
    assert env["TRAEFIK_METRICS_PROMETHEUS"] == "true"
    assert env[f"TRAEFIK_ENTRYPOINTS_{entrypoint.upper()}_ADDRESS"] == f":{port}"


def test_grafana_waits_for_prometheus_and_has_a_development_admin_password(
    compose: dict[str, Any], raw_compose: dict[str, Any]
) -> None:
    spec = compose["services"]["grafana"]
    assert spec["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    assert spec["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    raw = raw_compose["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert raw.startswith("${GRAFANA_ADMIN_PASSWORD:-")


def test_every_service_process_sends_its_traces_to_zipkin(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in services_with_role(compose, "process").items():
        env = spec["environment"]
        assert env["OTEL_SERVICE_NAME"] == service_of(name), name
        assert env["TRACING"] == "on", name
        endpoint = env["OTEL_EXPORTER_ZIPKIN_ENDPOINT"]
        assert endpoint == "http://zipkin:9411/api/v2/spans", name
        assert endpoint.removeprefix("http://").split(":")[0] in services


def test_zipkin_keeps_spans_in_memory_with_a_small_heap_and_a_local_twin(
    compose: dict[str, Any],
) -> None:
    spec = compose["services"]["zipkin"]
    env = spec["environment"]
    assert env["STORAGE_TYPE"] == "mem"
    assert int(env["MEM_MAX_SPANS"]) > 0
    assert "-Xmx256m" in env["JAVA_OPTS"].split()
    assert spec["healthcheck"]["test"][-1] == "http://127.0.0.1:9411/health"
    # The same server version as the jar deploy/bin/bootstrap fetches for `make up`.
    version = spec["image"].partition(":")[2]
    bootstrap = (REPO / "deploy" / "bin" / "bootstrap").read_text()
    assert f"ZIPKIN_VERSION={version}\n" in bootstrap


def test_the_processes_of_a_service_share_one_metrics_volume(compose: dict[str, Any]) -> None:
    users: dict[str, set[str]] = defaultdict(set)
    for name, spec in services_with_role(compose, "process").items():
        directory = spec["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        volume = mounts(spec)[directory]
        assert volume == f"{service_of(name)}-metrics", name
        users[volume].add(name)
    for volume, containers in users.items():
        assert {service_of(c) for c in containers} == {volume.removesuffix("-metrics")}
        svc = SERVICES[volume.removesuffix("-metrics")]
        assert f"{svc.name}-http" in containers
        assert len(containers) == 1 + bool(svc.grpc_port) + len(svc.workers)
    assert set(users) == {f"{s}-metrics" for s in SERVICES}


def test_metrics_volumes_are_emptied_with_the_service_and_writable_by_it(
    compose: dict[str, Any],
) -> None:
    for svc in SERVICES:
        options = compose["volumes"][f"{svc}-metrics"]["driver_opts"]
        assert options["type"] == "tmpfs"
        assert "uid=10001" in options["o"] and "gid=10001" in options["o"]
    dockerfile = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile


def test_one_shots_neither_trace_nor_write_metrics(compose: dict[str, Any]) -> None:
    for name, spec in services_with_role(compose, "init").items():
        env = spec.get("environment", {})
        assert "PROMETHEUS_MULTIPROC_DIR" not in env, name
        assert "OTEL_EXPORTER_ZIPKIN_ENDPOINT" not in env, name


def test_gunicorn_loads_the_hooks_that_forget_dead_workers(compose: dict[str, Any]) -> None:
    for name, spec in services_with_role(compose, "process").items():
        command = spec["command"]
        if command[0] != "gunicorn":
            continue
        assert "python:common.gunicorn_conf" in command, name
        assert command[command.index("python:common.gunicorn_conf") - 1] == "-c"
