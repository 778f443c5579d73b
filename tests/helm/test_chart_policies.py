"""What every install of the chart promises, whatever the values: non-root read-only
containers with probes and resources, one beat replaced by Recreate, autoscaling for
the HTTP, gRPC and worker Deployments, a disruption budget for each, migrations as a
hook before the processes, keys from Secrets."""

from __future__ import annotations

from typing import Any

from tests.helm.conftest import Rendered, full_name, render


def kind_of(deployment: dict[str, Any]) -> str:
    return str(deployment["metadata"]["labels"]["app.kubernetes.io/component"])


def test_containers_run_as_non_root_on_a_read_only_filesystem(rendered: Rendered) -> None:
    for name, pod in rendered.pod_specs().items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert sc["runAsUser"] >= 10000, name
            # What the processes write is in memory-backed or scratch volumes.
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/tmp", "/var/run/metrics", "/app/var/run"} <= mounts, name


def test_every_container_has_resources_and_probes(rendered: Rendered) -> None:
    for name, deployment in rendered.of_kind("Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"requests", "limits"} <= set(container["resources"]), name
        assert "livenessProbe" in container and "readinessProbe" in container, name
    for name, job in rendered.of_kind("Job").items():
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert {"requests", "limits"} <= set(container["resources"]), name


def test_http_readiness_asks_the_services_health_endpoint(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment").values():
        if kind_of(deployment) == "http":
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_beat_runs_alone_and_is_replaced_not_rolled(rendered: Rendered) -> None:
    beat = rendered.of_kind("Deployment")[full_name("orchestrator-beat")]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert full_name("orchestrator-beat") not in rendered.of_kind("HorizontalPodAutoscaler")


def test_production_autoscales_http_grpc_and_worker_on_cpu(prod: Rendered) -> None:
    hpas = prod.of_kind("HorizontalPodAutoscaler")
    kinds = {kind_of(d) for n, d in prod.of_kind("Deployment").items() if n in hpas}
    assert kinds == {"http", "grpc", "worker"}
    for name, deployment in prod.of_kind("Deployment").items():
        if kind_of(deployment) in kinds:
            assert name in hpas, name
            # The autoscaler owns the count: a replicas field would fight it on upgrade.
            assert "replicas" not in deployment["spec"], name
    assert hpas[full_name("purchase-http")]["spec"]["minReplicas"] == 4


def test_every_deployment_has_a_disruption_budget(rendered: Rendered) -> None:
    budgets = rendered.of_kind("PodDisruptionBudget")
    for name, deployment in rendered.of_kind("Deployment").items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"] == selector


def test_migrations_run_as_a_hook_before_install_and_upgrade(rendered: Rendered) -> None:
    jobs = rendered.of_kind("Job")
    assert len(jobs) == 6
    for name, job in jobs.items():
        hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
        assert hooks == {"pre-install", "pre-upgrade"}, name
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["command"][-2:] == ["migrate", "--noinput"]


def test_only_the_account_service_mounts_the_signing_key(rendered: Rendered) -> None:
    for name, pod in rendered.pod_specs().items():
        secrets = {v["name"] for v in pod["volumes"] if "secret" in v}
        assert ("jwt-private" in secrets) == ("-account-" in name), name


def test_the_infrastructure_alone_renders_no_process() -> None:
    # The first step of a first install: databases and Kafka, before any migration.
    docs = render("values-prod.yaml", "apps.enabled=false")
    kinds = {d["kind"] for d in docs}
    assert kinds.isdisjoint({"Deployment", "Job", "IngressRoute", "Service"})
    assert {"Cluster", "Kafka", "KafkaNodePool", "KafkaTopic"} <= kinds
