"""What each container needs to run and to be judged healthy: the variables the
services read, the keys, the broker, and a health check on everything long-running."""

from __future__ import annotations

import re
from typing import Any

import pytest

from common.topology import SERVICES
from tests.deploy.conftest import REPO, services_with_role

# What the settings read to find the infrastructure, and the files each one lives in.
INFRA_VARIABLES = (
    "DB_HOST",
    "DB_PORT",
    "KAFKA_BOOTSTRAP_SERVERS",
    "REDIS_CLUSTER_NODES",
    "GRPC_EDGE_TARGET",
    "DJANGO_SECRET_KEY",
    "JWT_PUBLIC_KEY_FILE",
)
SOURCES = [
    *(REPO / "common" / "src" / "common").rglob("*.py"),
    *(p for s in SERVICES.values() for p in (REPO / s.package / "config").glob("*.py")),
]


def app_containers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        **services_with_role(compose, "process"),
        **{n: s for n, s in services_with_role(compose, "init").items() if n.endswith("-migrate")},
    }


def service_of(container: str) -> str:
    return next(s for s in SERVICES if container.startswith(f"{s}-"))


@pytest.mark.parametrize(
    "variable",
    [
        *INFRA_VARIABLES,
        "CELERY_BROKER_URL",
        "JWT_PRIVATE_KEY_FILE",
        "PROMETHEUS_MULTIPROC_DIR",
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "TRACING",
    ],
)
def test_each_variable_set_for_the_services_is_read_by_their_code(variable: str) -> None:
    # Guards against a rename in the settings that would leave a container on defaults.
    assert any(f'"{variable}"' in p.read_text() for p in SOURCES), variable


def test_every_service_container_finds_the_infrastructure(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in app_containers(compose).items():
        env = spec["environment"]
        for variable in INFRA_VARIABLES:
            assert env.get(variable), f"{name}: {variable}"
        assert env["DB_HOST"] in services
        assert env["KAFKA_BOOTSTRAP_SERVERS"].split(":")[0] in services
        assert env["GRPC_EDGE_TARGET"] == "traefik:50050"
        assert env["DJANGO_SETTINGS_MODULE"] == SERVICES[service_of(name)].settings_module


def test_each_service_gets_its_own_database_password_and_no_other(compose: dict[str, Any]) -> None:
    for name, spec in app_containers(compose).items():
        passwords = {k for k in spec["environment"] if k.endswith("_DB_PASSWORD")}
        assert passwords == {f"{service_of(name).upper()}_DB_PASSWORD"}, name


def test_only_the_account_service_can_read_the_signing_key(compose: dict[str, Any]) -> None:
    for name, spec in app_containers(compose).items():
        mounts = spec["volumes"]
        env = spec["environment"]
        public_file = env["JWT_PUBLIC_KEY_FILE"]
        assert any(m.endswith(":ro") and public_file.startswith(m.split(":")[1]) for m in mounts)
        has_private = any(m.startswith("jwt-private:") for m in mounts)
        if service_of(name) == "account":
            assert has_private and "JWT_PRIVATE_KEY_FILE" in env, name
            assert "jwt-private:/keys/private:ro" in mounts
        else:
            assert not has_private and "JWT_PRIVATE_KEY_FILE" not in env, name
    keys = compose["services"]["jwt-keys"]
    assert "ensure_dev_keys" in " ".join(keys["command"])
    assert {m.split(":")[0] for m in keys["volumes"]} == {"jwt-private", "jwt-public"}


def test_celery_processes_use_the_separate_broker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for spec in services_with_role(compose, "process").values():
        command = spec["command"]
        if command[0] != "celery":
            continue
        url = spec["environment"]["CELERY_BROKER_URL"]
        host = re.match(r"redis://([^:/]+)", url)
        assert host and host.group(1) == "redis-broker", url
        assert "cluster-enabled" not in services["redis-broker"]["command"]
        assert spec["depends_on"]["redis-broker"]["condition"] == "service_healthy"


def test_every_long_running_container_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        if spec.get("restart") == "no":
            assert spec["labels"]["saga.role"] == "init", name
            continue
        assert spec.get("restart") == "unless-stopped", name
        check = spec.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), name


@pytest.mark.parametrize(
    ("suffix", "mode"), [("-http", "http"), ("-grpc", "grpc"), ("-worker", "celery")]
)
def test_service_processes_are_probed_by_what_they_serve(
    compose: dict[str, Any], suffix: str, mode: str
) -> None:
    probed = 0
    for name, spec in services_with_role(compose, "process").items():
        if not name.endswith(suffix):
            continue
        test = spec["healthcheck"]["test"]
        assert test[:5] == ["CMD", "python", "-m", "deploy.docker.healthcheck", mode], name
        svc = SERVICES[service_of(name)]
        if mode == "http":
            assert test[5] == str(svc.http_port)
        if mode == "grpc":
            assert test[5:] == [str(svc.grpc_port), *svc.grpc_services]
        probed += 1
    assert probed


def test_service_processes_run_under_an_init_and_stop_gracefully(compose: dict[str, Any]) -> None:
    for name, spec in services_with_role(compose, "process").items():
        assert spec["init"] is True, name
        assert re.fullmatch(r"\d+s", spec["stop_grace_period"]), name


def test_every_service_container_is_built_from_the_one_image(compose: dict[str, Any]) -> None:
    images = set()
    for spec in compose["services"].values():
        if "build" in spec:
            assert spec["build"] == {"context": ".", "dockerfile": "deploy/docker/Dockerfile"}
            images.add(spec["image"])
    assert len(images) == 1
    built = {n for n, s in compose["services"].items() if "build" in s}
    assert set(app_containers(compose)) | {"jwt-keys"} == built


def test_the_kafka_ui_replaces_kafdrop_and_listens_on_this_machine_only(
    compose: dict[str, Any],
) -> None:
    ui = compose["services"]["kafka-ui"]
    assert ui["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == "kafka:9092"
    assert all(p.startswith("127.0.0.1:") for p in ui["ports"])
    assert ui["depends_on"]["kafka"]["condition"] == "service_healthy"
