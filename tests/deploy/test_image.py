"""The service image: hadolint passes with nothing ignored, every service is in it,
it runs as a non-root user, and it carries the runtime packages only."""

from __future__ import annotations

import ast
import re
import subprocess
from importlib.metadata import packages_distributions
from pathlib import Path

from common.topology import SERVICES
from deploy.docker.requirements import DEV_ONLY, normalize, requirement_name
from tests.deploy.conftest import DOCKERFILE, REPO, hadolint

LOCK = REPO / "requirements.lock"


def stages() -> list[str]:
    """The Dockerfile's stages, each from its FROM line."""
    text = DOCKERFILE.read_text()
    return re.split(r"(?m)^(?=FROM )", text)[1:]


def test_hadolint_passes_with_no_rule_ignored() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hadolint ignore" not in DOCKERFILE.read_text()
    assert (
        not (REPO / ".hadolint.yaml").exists()
        or "ignored" not in (REPO / ".hadolint.yaml").read_text()
    )


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    # Proves the check above can fail: an unpinned base and pip install without pins.
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install django\n")
    result = subprocess.run(
        [hadolint(), "--no-color", str(careless)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DL3006" in result.stdout and "DL3013" in result.stdout


def test_the_final_stage_is_slim_python_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    assert re.match(r"FROM \$\{PYTHON_IMAGE\} AS runtime", final)
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE.read_text())
    user = re.findall(r"(?m)^USER (\S+)", final)
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0"
    assert not re.search(r"apt-get|gcc|build-essential|pip install", final)
    assert "COPY --from=builder /opt/venv /opt/venv" in final


def test_both_stages_copy_every_service_of_the_topology() -> None:
    builder, final = stages()
    for svc in SERVICES.values():
        assert f"COPY {svc.package}/ {svc.package}/" in builder, svc.package
        assert f"COPY {svc.package}/ {svc.package}/" in final, svc.package
    # Static files are collected for every service too.
    loop = re.search(r"for svc in ([a-z ]+); do", builder)
    assert loop and loop.group(1).split() == list(SERVICES)


def test_the_builder_installs_the_lock_without_compiling_and_checks_it() -> None:
    builder = stages()[0]
    assert "--only-binary=:all: --no-deps -r requirements.runtime.txt" in builder
    assert "pip check" in builder
    assert "pip install --no-cache-dir --no-deps ./common ./proto" in builder


def test_the_build_context_leaves_out_the_local_platforms_state() -> None:
    ignored = (REPO / "deploy" / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert {"var/", ".venv/", ".git/"} <= set(ignored)


def test_the_image_installs_lock_pins_and_no_tool() -> None:
    runtime = REPO / "deploy" / "docker" / "requirements.runtime.txt"
    lines = [line for line in runtime.read_text().splitlines() if not line.startswith("#")]
    lock_lines = set(LOCK.read_text().splitlines())
    assert lines and all(line in lock_lines for line in lines), "every line a lock pin"
    names = {requirement_name(line) for line in lines}
    assert names.isdisjoint(DEV_ONLY)
    for needed in ("django", "gunicorn", "celery", "grpcio", "confluent-kafka", "psycopg2-binary"):
        assert needed in names
    # The benchmark's tools are out, and so is what only they need.
    assert "numpy" not in names and "multidict" not in names
    # The Zipkin trace exporter sends its spans with requests.
    assert {"requests", "opentelemetry-exporter-zipkin-json"} <= names
    locked = {requirement_name(line) for line in LOCK.read_text().splitlines()} - {None}
    direct = {
        requirement_name(line) for line in (REPO / "requirements.in").read_text().splitlines()
    }
    # No stale entry: each name left out is a package the repository does use.
    assert (locked | direct) >= DEV_ONLY, DEV_ONLY - locked - direct


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_code_in_the_image_imports_a_package_left_out_of_it() -> None:
    in_image = [
        *(REPO / "common" / "src").rglob("*.py"),
        *(REPO / "proto" / "src").rglob("*.py"),
        *(p for s in SERVICES.values() for p in (REPO / s.package).rglob("*.py")),
        *(REPO / "deploy" / "docker").glob("*.py"),
        REPO / "deploy" / "local" / "keys.py",
        REPO / "deploy" / "local" / "console.py",
    ]
    in_image = [p for p in in_image if "tests" not in p.relative_to(REPO).parts]
    in_image = [p for p in in_image if p.name not in ("generate.py", "wait.py")]  # host tools
    # The test suites' helpers (pytest, requests): shipped, never imported by the services.
    helpers = {
        "common.testing": "testing.py",
        "common.testing_reads": "testing_reads.py",
        "common.admin_identity.testing": "admin_identity/testing.py",
        "common.grpc.testing": "grpc/testing.py",
    }
    for name in helpers.values():
        in_image.remove(REPO / "common" / "src" / "common" / name)
    providers = packages_distributions()
    offenders = []
    for path in in_image:
        source = path.read_text()
        for helper in helpers:
            package, _, module = helper.rpartition(".")
            if helper in source or f"from {package} import {module}" in source:
                offenders.append(f"{path.relative_to(REPO)} imports {helper}")
        for module in _imports(path):
            dists = {normalize(d) for d in providers.get(module, [])}
            if dists and dists <= DEV_ONLY:
                offenders.append(f"{path.relative_to(REPO)} imports {module} ({dists})")
    assert not offenders, offenders
