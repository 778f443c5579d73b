"""docker-compose.yml is current, parses with a real compose implementation, and
every service, volume, network, file and variable it refers to is defined."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    REPO,
    VARIABLE,
    compose_implementations,
    minimal_env,
)

IMPLEMENTATIONS = compose_implementations()


def run_config(
    command: list[str], compose_file: Path, tmp_path: Path, env_lines: str = ""
) -> subprocess.CompletedProcess[str]:
    """`config` as a user runs it, with an env file we control (not a developer's .env)."""
    env_file = tmp_path / "compose.env"
    env_file.write_text(env_lines)
    return subprocess.run(
        [
            *command,
            "--project-directory",
            str(REPO),
            "--env-file",
            str(env_file),
            "-f",
            str(compose_file),
            "config",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=minimal_env(),
        cwd=REPO,
    )


def accepted(result: subprocess.CompletedProcess[str]) -> bool:
    """Whether `config` accepted the file. Compose v2 (2.40) reports an invalid project
    on stderr yet exits 0, so the exit status alone proves nothing."""
    return result.returncode == 0 and bool(result.stdout.strip()) and "invalid" not in result.stderr


def test_the_committed_files_are_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.docker.generate", "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_the_generated_files_do_not_depend_on_the_callers_environment() -> None:
    # A port or partition override in a developer's shell must not leak into the file.
    result = subprocess.run(
        [sys.executable, "-m", "deploy.docker.generate", "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env=minimal_env(SERVICE_PORT_BASE="9100", KAFKA_PARTITIONS="12", EDGE_PORT="81"),
    )
    assert result.returncode == 0, result.stderr


def test_a_compose_implementation_is_installed() -> None:
    assert IMPLEMENTATIONS, (
        "no compose implementation: deploy/bin/bootstrap installs Debian's docker-compose"
    )


@pytest.mark.parametrize("command", IMPLEMENTATIONS, ids=lambda c: " ".join(c))
def test_compose_config_accepts_the_file_with_its_defaults(
    command: list[str], tmp_path: Path
) -> None:
    result = run_config(command, COMPOSE_FILE, tmp_path)
    assert accepted(result), result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert "${" not in result.stdout
    assert set(resolved["services"]) == set(yaml.safe_load(COMPOSE_FILE.read_text())["services"])
    ports = resolved["services"]["traefik"]["ports"]
    assert any(
        str(p.get("published") if isinstance(p, dict) else p).startswith(("80", "0.0.0.0:80"))
        for p in ports
    ), ports


@pytest.mark.parametrize("command", IMPLEMENTATIONS, ids=lambda c: " ".join(c))
def test_an_env_file_overrides_ports_partitions_and_passwords(
    command: list[str], tmp_path: Path
) -> None:
    result = run_config(
        command,
        COMPOSE_FILE,
        tmp_path,
        "DOCKER_EDGE_PORT=8088\nKAFKA_PARTITIONS=12\nORDER_DB_PASSWORD=s3cret\n",
    )
    assert accepted(result), result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["kafka-init"]["environment"]["PARTITIONS"] == "12"
    assert services["order-http"]["environment"]["ORDER_DB_PASSWORD"] == "s3cret"
    assert services["postgres-init"]["environment"]["ORDER_DB_PASSWORD"] == "s3cret"
    assert "8088" in str(services["traefik"]["ports"])


@pytest.mark.parametrize("command", IMPLEMENTATIONS, ids=lambda c: " ".join(c))
def test_compose_config_rejects_a_dependency_on_a_missing_service(
    command: list[str], tmp_path: Path
) -> None:
    # The check above is only worth something if the implementation does validate.
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["account-http"]["depends_on"]["no-such-service"] = {
        "condition": "service_healthy"
    }
    target = tmp_path / "docker-compose.yml"
    target.write_text(yaml.safe_dump(broken, sort_keys=False))
    result = run_config(command, target, tmp_path)
    assert not accepted(result)
    assert "no-such-service" in (result.stderr + result.stdout)


def test_every_dependency_is_a_service_and_its_condition_can_be_met(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, spec in services.items():
        for target, how in spec.get("depends_on", {}).items():
            assert target in services, f"{name} depends on undefined {target}"
            condition = how["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name}: {target} has no healthcheck"
            else:
                assert condition == "service_completed_successfully", (name, target, condition)
                assert services[target].get("restart") == "no", f"{target} is not a one-shot"


def test_every_named_volume_and_network_is_declared(compose: dict[str, Any]) -> None:
    declared_volumes = set(compose["volumes"])
    declared_networks = set(compose["networks"])
    used_volumes = set()
    for name, spec in compose["services"].items():
        networks = spec.get("networks", [])
        assert networks, f"{name} is on no declared network"
        assert set(networks) <= declared_networks, name
        for mount in spec.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith((".", "/")):
                continue
            assert source in declared_volumes, f"{name} mounts undeclared volume {source}"
            used_volumes.add(source)
    assert used_volumes == declared_volumes, "a declared volume is used by no service"


def test_every_bind_mount_is_a_file_or_directory_of_this_repository_read_only(
    compose: dict[str, Any],
) -> None:
    for name, spec in compose["services"].items():
        for mount in spec.get("volumes", []):
            source, _, rest = mount.partition(":")
            if source.startswith("./"):
                path = REPO / source
                assert path.is_file() or path.is_dir(), f"{name}: {source} is missing"
                assert rest.endswith(":ro"), f"{name}: {source} must be mounted read-only"


def test_every_variable_has_a_default_and_is_documented_in_env_example() -> None:
    text = "\n".join(
        line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    documented = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            documented[key] = value
    used: dict[str, set[str]] = {}
    for match in VARIABLE.finditer(text):
        name, default = match.group(1), match.group(2)
        assert default is not None, f"${{{name}}} has no default"
        used.setdefault(name, set()).add(default)
    assert used, "the compose file uses no variable at all"
    for name, defaults in used.items():
        assert len(defaults) == 1, f"{name} has two defaults: {defaults}"
        assert documented.get(name) == next(iter(defaults)), f"{name} in .env.example"
    assert set(documented) == set(used)


def test_secrets_are_marked_development_defaults_in_env_example() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        key = line.partition("=")[0]
        if key.endswith(("_PASSWORD", "_SECRET_KEY")):
            assert "DEVELOPMENT DEFAULT" in lines[i - 1], key
