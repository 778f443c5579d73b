"""The chart lints, renders and validates offline: Kubernetes' own kinds against the
API schemas of a current Kubernetes (kubernetes-validate, strict: no unknown field),
the operators' kinds against our structural schemas (crd_schemas.py), and checkov
finds no misconfiguration beyond a short, justified list."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.helm.conftest import (
    CHART,
    CHECKOV,
    PROD_DIGEST,
    REPO,
    VALUE_FILES,
    Rendered,
    helm,
    render,
    tool,
)
from tests.helm.crd_schemas import SCHEMAS

KUBERNETES_VERSION = "1.33"

# checkov's findings we accept, each with its reason (docs/adr/0022-kubernetes-chart.md).
# Everything else checkov finds fails the test.
CHECKOV_ACCEPTED = {
    # Django settings read the database password and SECRET_KEY from the environment
    # (common/src/common/settings.py), the services' one configuration contract on
    # every platform; the JWT keys, which the code can read from files, are files.
    "CKV_K8S_35": "secrets as environment variables: the services' settings read them so",
}
CHECKOV_ACCEPTED_DEV = {
    **CHECKOV_ACCEPTED,
    # A development cluster runs an image loaded into it (kind load, minikube image
    # load), which no registry has: it cannot be pulled, by digest or Always.
    "CKV_K8S_43": "image by digest: the dev image is built locally, it has no digest",
    "CKV_K8S_15": "pull policy Always: the dev image is loaded locally, not pullable",
}


def test_the_chart_reads_a_current_topology() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deploy.helm.generate", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values_file", VALUE_FILES)
def test_helm_lint_passes_strictly(values_file: str) -> None:
    done = helm("lint", "--strict", str(CHART), "-f", str(CHART / values_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_rendering_refuses_a_missing_required_value(tmp_path: Path) -> None:
    # Given values that leave out what a template needs (an external Kafka's address)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"kafka": {"create": False, "bootstrapServers": ""}}))
    # Then the chart does not render, and says which value is missing
    done = helm("template", "saga", str(CHART), "-f", str(bad))
    assert done.returncode != 0
    assert "kafka.bootstrapServers" in done.stderr


def validate(doc: dict[str, Any]) -> None:
    """Validate one manifest: our schema for an operator's kind, else Kubernetes'."""
    key = (doc["apiVersion"], doc["kind"])
    if key in SCHEMAS:
        jsonschema.validate(doc, SCHEMAS[key])
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_manifest_validates(rendered: Rendered) -> None:
    errors = []
    for doc in rendered.docs:
        try:
            validate(doc)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"no schema: {exc.message}")
    assert not errors, "\n".join(errors)


def test_the_render_uses_every_kind_the_brief_names(prod: Rendered) -> None:
    kinds = {d["kind"] for d in prod.docs}
    assert {
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job",
        "IngressRoute", "Middleware", "Kafka", "KafkaNodePool", "KafkaTopic", "Cluster",
        "ScaledObject", "NetworkPolicy", "ServiceAccount",
    } <= kinds  # fmt: skip


def first_of(rendered: Rendered, kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(iter(rendered.of_kind(kind).values())))


@pytest.mark.parametrize(
    ("kind", "breaks"),
    [
        # Kubernetes' own: an unknown field, a wrong type
        ("Deployment", lambda d: d["spec"].update(replica=2)),
        ("Deployment", lambda d: d["spec"]["template"]["spec"].update(containers="web")),
        # The operators': a typo'd field, a missing required one, a wrong enum
        ("IngressRoute", lambda d: d["spec"]["routes"][0].update(mach="Path(`/`)")),
        ("KafkaTopic", lambda d: d["spec"].pop("partitions")),
        ("Cluster", lambda d: d["spec"]["bootstrap"]["initdb"].pop("owner")),
        ("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].update(lagThreshold=5)),
        ("KafkaNodePool", lambda d: d["spec"].update(roles=["zookeeper"])),
    ],
)
def test_validation_rejects_a_broken_manifest(prod: Rendered, kind: str, breaks: Any) -> None:
    doc = first_of(prod, kind)
    validate(doc)  # given a manifest that validates
    breaks(doc)
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        validate(doc)


def checkov_failures(rendered_docs: list[dict[str, Any]], tmp_path: Path) -> dict[str, set[str]]:
    """Run checkov on the manifests; answer each failed check id with its resources."""
    (tmp_path / "manifests.yaml").write_text(yaml.safe_dump_all(rendered_docs))
    done = subprocess.run(
        [
            tool(CHECKOV), "-d", str(tmp_path), "--framework", "kubernetes",
            "--skip-download", "--quiet", "--compact", "--output", "json",
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    assert reports and reports[0]["summary"]["resource_count"] > 50, done.stderr[-2000:]
    failed: dict[str, set[str]] = {}
    for r in reports:
        for check in r["results"]["failed_checks"]:
            failed.setdefault(check["check_id"], set()).add(check["resource"])
    return failed


def test_checkov_finds_nothing_in_production(tmp_path: Path) -> None:
    # As an operator installs it: the image pinned by digest.
    docs = render("values-prod.yaml", f"image.digest={PROD_DIGEST}")
    failed = checkov_failures(docs, tmp_path)
    unexpected = {k: sorted(v)[:3] for k, v in failed.items() if k not in CHECKOV_ACCEPTED}
    assert not unexpected, unexpected


def test_checkov_finds_nothing_in_development(tmp_path: Path) -> None:
    failed = checkov_failures(render("values-dev.yaml"), tmp_path)
    unexpected = {k: sorted(v)[:3] for k, v in failed.items() if k not in CHECKOV_ACCEPTED_DEV}
    assert not unexpected, unexpected


def test_checkov_would_see_a_root_container(tmp_path: Path) -> None:
    # Given the production render with one container allowed to escalate privileges
    docs = render("values-prod.yaml", f"image.digest={PROD_DIGEST}")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "allowPrivilegeEscalation"
    ] = True
    # Then checkov reports it (the check runs; the test above is not vacuous)
    assert "CKV_K8S_20" in checkov_failures(docs, tmp_path)
