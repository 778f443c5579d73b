"""The chart cannot drift from the system: every process of the local topology has its
Deployment running the same command, every route of the local edge its IngressRoute
with the same rule, every topic (and dead-letter twin) its KafkaTopic, every database
its CloudNativePG Cluster. Read back from the rendered manifests, not the generator."""

from __future__ import annotations

import json
import shlex

from common.contract.consumers import CONSUMERS
from common.contract.topics import saga_topics
from common.topology import SERVICES
from deploy.helm.generate import LOCAL_ONLY_ROUTER_PREFIX
from deploy.local import render
from deploy.local.programs import app_programs
from tests.helm.conftest import Rendered, full_name

PROGRAMS = app_programs(observability=False, copies=1)


def local_routers() -> dict[str, dict[str, object]]:
    routers = json.loads(render.traefik_dynamic())["http"]["routers"]
    return {n: r for n, r in routers.items() if not n.startswith(LOCAL_ONLY_ROUTER_PREFIX)}


def test_every_process_has_its_deployment(rendered: Rendered) -> None:
    deployments = rendered.of_kind("Deployment")
    assert set(deployments) == {full_name(p.name) for p in PROGRAMS}
    for program in PROGRAMS:
        (container,) = deployments[full_name(program.name)]["spec"]["template"]["spec"][
            "containers"
        ]
        local = shlex.split(program.command)
        # The same program and arguments; only the bind address is the pod's own.
        assert container["command"][0] == local[0].rsplit("/", 1)[-1]
        assert [a.replace("127.0.0.1", "0.0.0.0") for a in local[1:]] == container["command"][1:]


def test_every_route_of_the_local_edge_has_its_ingressroute(rendered: Rendered) -> None:
    routes = rendered.of_kind("IngressRoute")
    routers = local_routers()
    assert set(routes) == {full_name(n) for n in routers}
    services = rendered.of_kind("Service")
    for name, router in routers.items():
        (route,) = routes[full_name(name)]["spec"]["routes"]
        assert str(router["rule"]) in route["match"]
        assert route.get("priority") == router.get("priority")
        assert [m["name"] for m in route.get("middlewares", [])] == [
            full_name(m)
            for m in router.get("middlewares", [])  # type: ignore[attr-defined]
        ]
        (target,) = route["services"]
        service = services[target["name"]]
        assert target["name"] == full_name(str(router["service"]))
        assert target["port"] == service["spec"]["ports"][0]["port"]
        grpc = router["entryPoints"] == ["grpc"]
        assert target["scheme"] == ("h2c" if grpc else "http")
        assert routes[full_name(name)]["spec"]["entryPoints"] == ["grpc" if grpc else "web"]


def test_every_middleware_a_route_names_exists(rendered: Rendered) -> None:
    middlewares = rendered.of_kind("Middleware")
    for route in rendered.of_kind("IngressRoute").values():
        for m in route["spec"]["routes"][0].get("middlewares", []):
            assert m["name"] in middlewares


def test_the_grpc_servers_answer_their_health_check_by_service_name(rendered: Rendered) -> None:
    deployments = rendered.of_kind("Deployment")
    for svc in SERVICES.values():
        if not svc.grpc_port:
            continue
        (container,) = deployments[full_name(f"{svc.name}-grpc")]["spec"]["template"]["spec"][
            "containers"
        ]
        assert container["readinessProbe"]["grpc"] == {
            "port": svc.grpc_port,
            "service": svc.grpc_services[0],
        }


def test_every_topic_and_its_dead_letter_twin_is_declared(rendered: Rendered) -> None:
    topics = {t["spec"]["topicName"] for t in rendered.of_kind("KafkaTopic").values()}
    assert topics == set(saga_topics())
    assert {t for t in topics if t.endswith(".DLQ")}


def test_every_service_database_has_its_cluster(rendered: Rendered) -> None:
    clusters = rendered.of_kind("Cluster")
    assert {c["spec"]["bootstrap"]["initdb"]["database"] for c in clusters.values()} == {
        s.database for s in SERVICES.values()
    }
    for svc in SERVICES.values():
        initdb = clusters[full_name(f"{svc.name}-db")]["spec"]["bootstrap"]["initdb"]
        assert initdb["owner"] == svc.db_role


def test_each_process_reads_its_own_database_password(rendered: Rendered) -> None:
    for name, deployment in rendered.of_kind("Deployment").items():
        service = deployment["metadata"]["labels"]["saga/service"]
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        password = env[f"{service.upper()}_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {"name": full_name(f"{service}-db-app"), "key": "password"}, name
        assert env["DB_HOST"]["value"] == full_name(f"{service}-db-rw")


def test_consumers_scale_on_their_group_lag_in_production(prod: Rendered) -> None:
    scaled = prod.of_kind("ScaledObject")
    consumers = [p for p in PROGRAMS if "kafka_consume" in p.command]
    assert set(scaled) == {full_name(p.name) for p in consumers}
    for program in consumers:
        spec = CONSUMERS[program.command.split()[-1]]
        (trigger,) = scaled[full_name(program.name)]["spec"]["triggers"]
        assert trigger["metadata"]["consumerGroup"] == spec.group_id
        assert trigger["metadata"]["topic"] == spec.topic
        assert scaled[full_name(program.name)]["spec"]["maxReplicaCount"] <= 12  # partitions
