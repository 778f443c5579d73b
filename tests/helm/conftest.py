"""The chart, rendered offline with the helm that deploy/bin/bootstrap-helm builds.

Each value file is rendered once per session (`helm template`), with a fixed release
name and namespace, into a list of manifests the tests read.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "saga"
HELM = Path(os.environ.get("HELM", REPO / "var" / "deps" / "go" / "bin" / "helm"))
CHECKOV = Path(os.environ.get("CHECKOV", REPO / "var" / "deps" / "checkov" / "bin" / "checkov"))
RELEASE = "saga"
NAMESPACE = "shop"
VALUE_FILES = ("values-dev.yaml", "values-prod.yaml")
# A digest as an operator pins the image with in production (docs/kubernetes.md).
PROD_DIGEST = "sha256:" + "ab" * 32


def tool(path: Path) -> str:
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run deploy/bin/bootstrap-helm (or deploy/bin/bootstrap)")
    return str(path)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool(HELM), *args], capture_output=True, text=True, timeout=120, check=False
    )


def render(values_file: str, *overrides: str) -> list[dict[str, Any]]:
    """`helm template` of the chart with one value file; the manifests, empty ones left out."""
    sets = [a for o in overrides for a in ("--set", o)]
    done = helm(
        "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "-f", str(CHART / values_file), *sets,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@dataclass(frozen=True)
class Rendered:
    values_file: str
    docs: list[dict[str, Any]]

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in self.docs if d["kind"] == kind}

    def pod_specs(self) -> dict[str, dict[str, Any]]:
        """Every pod template: the Deployments' and the migration Jobs'."""
        out = {}
        for kind in ("Deployment", "Job"):
            for name, doc in self.of_kind(kind).items():
                out[f"{kind}/{name}"] = doc["spec"]["template"]["spec"]
        return out


_RENDERED: dict[str, Rendered] = {}


@pytest.fixture(params=VALUE_FILES)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    name = request.param
    if name not in _RENDERED:
        _RENDERED[name] = Rendered(name, render(name))
    return _RENDERED[name]


@pytest.fixture
def prod() -> Rendered:
    if "values-prod.yaml" not in _RENDERED:
        _RENDERED["values-prod.yaml"] = Rendered("values-prod.yaml", render("values-prod.yaml"))
    return _RENDERED["values-prod.yaml"]


def full_name(name: str) -> str:
    return f"{RELEASE}-{name}"
