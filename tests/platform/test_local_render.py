"""What deploy/local renders with the OBSERVABILITY switch on and off: supervisord
groups, each program's environment, gunicorn's config module, Prometheus' targets and
Traefik's metrics. Unit tests of the render functions: no platform needed."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest
import yaml
from supervisor.datatypes import dict_of_key_value_pairs

from common.topology import INFRA, SERVICES
from deploy.local import __main__ as local_main
from deploy.local import paths, programs, render, supervisor


def supervisord(observability: bool) -> configparser.RawConfigParser:
    text = render.supervisord_conf(programs.all_programs(observability))
    conf = configparser.RawConfigParser()
    conf.read_string(text)
    return conf


def environment(conf: configparser.RawConfigParser, program: str) -> dict[str, str]:
    """A program's environment, parsed as supervisord parses it."""
    env: dict[str, str] = dict_of_key_value_pairs(conf[f"program:{program}"]["environment"])
    return env


def app_names() -> list[str]:
    return [p.name for p in programs.app_programs(False)]


def test_with_the_switch_on_a_third_group_runs_zipkin_and_prometheus() -> None:
    conf = supervisord(observability=True)

    groups = [s for s in conf.sections() if s.startswith("group:")]
    assert groups == ["group:infra", "group:observability", "group:apps"]
    observed = conf["group:observability"]["programs"].split(",")
    assert observed[:2] == ["zipkin", "prometheus"]
    zipkin = conf["program:zipkin"]["command"]
    assert f"-jar {paths.DEPS / 'zipkin' / 'zipkin-server.jar'}" in zipkin
    assert "--armeria.ports[0].ip=127.0.0.1" in zipkin  # this machine only
    assert f"--armeria.ports[0].port={INFRA.zipkin_port}" in zipkin
    assert environment(conf, "zipkin")["STORAGE_TYPE"] == "mem"
    prometheus = conf["program:prometheus"]["command"]
    assert f"--config.file={paths.PROMETHEUS_CONF}" in prometheus
    assert f"--storage.tsdb.path={paths.PROMETHEUS_DATA}" in prometheus
    assert f"--web.listen-address=127.0.0.1:{INFRA.prometheus_port}" in prometheus
    assert "--storage.tsdb.retention.time=2d" in prometheus
    spans = f"{INFRA.zipkin_url}/api/v2/spans"
    for name in app_names():
        assert environment(conf, name)["OTEL_EXPORTER_ZIPKIN_ENDPOINT"] == spans


def test_with_the_switch_off_nothing_observes_and_no_span_leaves() -> None:
    conf = supervisord(observability=False)

    assert "group:observability" not in conf.sections()
    assert "program:zipkin" not in conf.sections()
    assert "program:prometheus" not in conf.sections()
    for name in app_names():
        assert "OTEL_EXPORTER_ZIPKIN_ENDPOINT" not in environment(conf, name)


@pytest.mark.parametrize("observability", [True, False])
def test_every_process_of_a_service_shares_its_metrics_dir_and_name(
    observability: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACING", raising=False)
    conf = supervisord(observability)

    for program in programs.app_programs(observability):
        env = environment(conf, program.name)
        metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
        assert metrics_dir.is_absolute()
        assert metrics_dir == paths.VAR / "run" / "metrics" / program.service
        assert env["OTEL_SERVICE_NAME"] == program.service
        assert env["TRACING"] == "on"
        assert env["PATH"].startswith(str(paths.VENV_BIN))
    services = {p.service for p in programs.app_programs(observability)}
    assert services == set(SERVICES)


def test_tracing_off_in_the_callers_environment_reaches_every_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACING", "off")

    conf = supervisord(observability=True)

    assert {environment(conf, name)["TRACING"] for name in app_names()} == {"off"}


def test_the_sampling_knobs_in_the_callers_environment_reach_every_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.1")

    conf = supervisord(observability=True)

    for name in app_names():
        env = environment(conf, name)
        assert (env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"]) == (
            "parentbased_traceidratio",
            "0.1",
        )


def test_gunicorn_loads_the_observability_hooks() -> None:
    for svc in SERVICES.values():
        command = supervisord(observability=False)[f"program:{svc.name}-http"]["command"]
        assert " -c python:common.gunicorn_conf " in command
        assert f"{svc.package}.config.wsgi:application" in command


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("1", True), ("on", True), ("true", True), ("YES", True), ("", False), ("0", False)],
)
def test_the_switch_reads_the_environment(
    value: str, enabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSERVABILITY", value)

    assert programs.observability_enabled() is enabled
    names = {p.name for p in programs.all_programs()}
    assert ("zipkin" in names) is enabled
    assert ("prometheus" in names) is enabled


def test_prometheus_scrapes_each_service_and_traefik() -> None:
    config = yaml.safe_load(render.prometheus_yml())

    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    expected = {svc.name: [f"127.0.0.1:{svc.http_port}"] for svc in SERVICES.values()}
    expected["traefik"] = [f"127.0.0.1:{INFRA.traefik_dashboard_port}"]
    assert targets == expected
    assert config["global"]["scrape_interval"] == "5s"
    assert {job.get("metrics_path", "/metrics") for job in config["scrape_configs"]} == {"/metrics"}


def test_traefik_serves_prometheus_metrics_on_its_dashboard_entrypoint() -> None:
    static = json.loads(render.traefik_static())

    assert static["metrics"]["prometheus"] == {
        "entryPoint": "traefik",
        "addEntryPointsLabels": True,
        "addRoutersLabels": True,
        "addServicesLabels": True,
    }


def test_metrics_dirs_are_emptied_only_for_services_with_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "METRICS", tmp_path)
    apps = programs.app_programs(False)
    for service in ("purchase", "order"):
        (tmp_path / service).mkdir()
        (tmp_path / service / "counter_123.db").write_text("old")
    # One purchase process still runs: its files must stay; order is all stopped.
    states = {p.name: "STOPPED" for p in apps} | {"purchase-relay": "RUNNING"}
    monkeypatch.setattr(supervisor, "status", lambda: states)

    local_main.reset_metrics_dirs(apps)

    assert (tmp_path / "purchase" / "counter_123.db").exists()
    assert list((tmp_path / "order").iterdir()) == []
    assert {d.name for d in tmp_path.iterdir()} == set(SERVICES)


# The saga pipeline's processes, which no customer's request waits on (docs/adr/0013).
PIPELINE = {
    "kafka",
    "redis-broker",
    "order-grpc",
    "payment-grpc",
    "purchase-relay",
    "purchase-consumer",
    "orchestrator-worker",
    "orchestrator-beat",
    "orchestrator-relay",
    "orchestrator-consumer",
}


def test_the_pipeline_runs_behind_the_requests_at_a_lower_cpu_priority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BACKGROUND_NICE", raising=False)
    conf = supervisord(observability=False)
    for program in programs.all_programs(False):
        command = conf[f"program:{program.name}"]["command"]
        if program.kind in PIPELINE:  # copies run alike
            # (supervisord's own % escapes: Celery's %h is written %%h)
            assert command == f"nice -n 19 {program.command.replace('%', '%%')}", program.name
        else:  # the front door: HTTP, the gRPC servers a request calls, the databases
            assert not command.startswith("nice "), program.name


def test_background_nice_zero_runs_every_process_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKGROUND_NICE", "0")
    conf = supervisord(observability=False)
    for program in programs.all_programs(False):
        assert not conf[f"program:{program.name}"]["command"].startswith("nice ")
