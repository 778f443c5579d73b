"""The one description of what runs where.

Everything that needs to know a port, a database, a route prefix or a process
reads it from here: the settings of each service, the local platform (supervisord,
Traefik, PostgreSQL, Kafka), and the platform tests. Change it here and every consumer
follows, so the parts cannot drift apart. Kafka's topics, events and consumers are the
contract's (common.contract); the workers here name their consumers from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from common.contract.consumers import PURCHASE_RESULTS, PURCHASES


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class Service:
    """One Django service: its database, its HTTP port and routes, its gRPC surface."""

    name: str
    http_port: int
    route_prefixes: tuple[str, ...]
    grpc_port: int | None = None
    grpc_services: tuple[str, ...] = ()
    # Its gRPC server answers the saga's steps only, no customer's request waits on it:
    # it runs behind the requests, as the pipeline does (docs/adr/0013).
    grpc_for_sagas_only: bool = False
    # Long-running workers besides gunicorn and the gRPC server: name -> command
    # (run from the repository root, inside the virtualenv). Command lines, because
    # supervisord, compose and the chart run them; a consumer is named by its spec.
    workers: dict[str, str] = field(default_factory=dict)

    @property
    def package(self) -> str:
        return f"{self.name}_svc"

    @property
    def database(self) -> str:
        return f"{self.name}_db"

    @property
    def db_role(self) -> str:
        return f"{self.name}_svc"

    @property
    def settings_module(self) -> str:
        return f"{self.package}.config.settings"

    def manage(self, *args: str) -> str:
        return " ".join((f"python {self.package}/manage.py", *args))

    def http_port_of(self, replica: int) -> int:
        """The HTTP port of copy `replica` (1, 2, ...) of this service's gunicorn."""
        return self.http_port + REPLICA_PORT_STEP * (replica - 1)

    def grpc_port_of(self, replica: int) -> int | None:
        """The gRPC port of copy `replica` of this service's gRPC server, if it has one."""
        return (
            None if self.grpc_port is None else self.grpc_port + REPLICA_PORT_STEP * (replica - 1)
        )

    def scales(self, worker: str) -> bool:
        """Whether a worker may run as several copies (`make up REPLICAS=`): every one
        but Celery beat, whose schedule would fire once per copy (docs/adr/0023)."""
        return worker not in SINGLE_COPY_WORKERS


# `make up REPLICAS=n` runs n copies of every process that scales; copy r listens on its
# service's ports plus REPLICA_PORT_STEP * (r - 1): 8101, 8201, ... and 50101, 50201, ...
REPLICA_PORT_STEP = env_int("REPLICA_PORT_STEP", 100)
SINGLE_COPY_WORKERS = frozenset({"beat"})

_PORT_BASE = env_int("SERVICE_PORT_BASE", 8100)
_GRPC_PORT_BASE = env_int("GRPC_PORT_BASE", 50100)

SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service(
            "account",
            http_port=_PORT_BASE + 1,
            route_prefixes=("/api/v1/account",),
            grpc_port=_GRPC_PORT_BASE + 1,
            grpc_services=("auth.AuthService",),
        ),
        Service(
            "product",
            http_port=_PORT_BASE + 2,
            route_prefixes=("/api/v1/products", "/api/v1/categories"),
            grpc_port=_GRPC_PORT_BASE + 2,
            grpc_services=("product.ProductService",),
        ),
        Service(
            "order",
            http_port=_PORT_BASE + 3,
            route_prefixes=("/api/v1/orders",),
            grpc_port=_GRPC_PORT_BASE + 3,
            grpc_services=("order.OrderService",),
            grpc_for_sagas_only=True,
        ),
        Service(
            "payment",
            http_port=_PORT_BASE + 4,
            route_prefixes=("/api/v1/payments",),
            grpc_port=_GRPC_PORT_BASE + 4,
            grpc_services=("payment.PaymentService",),
            grpc_for_sagas_only=True,
        ),
        Service(
            "purchase",
            http_port=_PORT_BASE + 5,
            route_prefixes=("/api/v1/purchases",),
            workers={
                "relay": "python purchase_svc/manage.py outbox_relay",
                "consumer": f"python purchase_svc/manage.py kafka_consume {PURCHASE_RESULTS.name}",
            },
        ),
        Service(
            "orchestrator",
            http_port=_PORT_BASE + 6,
            route_prefixes=("/api/v1/sagas",),
            workers={
                # A task advances a batch of sagas, their calls made by the engine's own
                # thread pool (SAGA_CALL_CONCURRENCY): a few task threads are enough.
                "worker": "celery -A orchestrator_svc.config worker --loglevel INFO"
                " --pool threads --concurrency 4",
                "beat": "celery -A orchestrator_svc.config beat --loglevel INFO"
                " --schedule var/run/celerybeat-schedule",
                "relay": "python orchestrator_svc/manage.py outbox_relay",
                "consumer": f"python orchestrator_svc/manage.py kafka_consume {PURCHASES.name}",
            },
        ),
    )
}


@dataclass(frozen=True)
class Infra:
    """Addresses of the shared infrastructure, overridable by the environment."""

    edge_port: int = env_int("EDGE_PORT", 8000)
    grpc_edge_port: int = env_int("GRPC_EDGE_PORT", 50050)
    traefik_dashboard_port: int = env_int("TRAEFIK_DASHBOARD_PORT", 8080)
    pg_host: str = os.environ.get("PGHOST_TCP", "127.0.0.1")
    pg_port: int = env_int("PGPORT", 5432)
    redis_cluster_ports: tuple[int, ...] = tuple(
        env_int("REDIS_CLUSTER_PORT_BASE", 7000) + i for i in range(6)
    )
    redis_broker_port: int = env_int("REDIS_BROKER_PORT", 6380)
    kafka_port: int = env_int("KAFKA_PORT", 9092)
    kafka_controller_port: int = env_int("KAFKA_CONTROLLER_PORT", 9093)
    kafka_partitions: int = env_int("KAFKA_PARTITIONS", 6)
    # Observability (docs/observability.md). Locally Zipkin and Prometheus run only
    # with `make up OBSERVABILITY=1`; docker-compose always runs them.
    prometheus_port: int = env_int("PROMETHEUS_PORT", 9090)
    grafana_port: int = env_int("GRAFANA_PORT", 3000)
    # Zipkin (traces: API and UI on one port) and Flower (Celery's monitor): both run
    # locally with `make up OBSERVABILITY=1`, and always under docker-compose.
    zipkin_port: int = env_int("ZIPKIN_PORT", 9411)
    flower_port: int = env_int("FLOWER_PORT", 5555)

    @property
    def kafka_bootstrap(self) -> str:
        return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{self.kafka_port}")

    @property
    def redis_cluster_nodes(self) -> str:
        default = ",".join(f"127.0.0.1:{p}" for p in self.redis_cluster_ports)
        return os.environ.get("REDIS_CLUSTER_NODES", default)

    @property
    def celery_broker_url(self) -> str:
        default = f"redis://127.0.0.1:{self.redis_broker_port}/0"
        return os.environ.get("CELERY_BROKER_URL", default)

    @property
    def grpc_edge_target(self) -> str:
        return os.environ.get("GRPC_EDGE_TARGET", f"127.0.0.1:{self.grpc_edge_port}")

    @property
    def zipkin_url(self) -> str:
        """Zipkin's base URL: the UI under /zipkin/, the API under /api/v2/."""
        return os.environ.get("ZIPKIN_URL", f"http://127.0.0.1:{self.zipkin_port}")

    @property
    def flower_url(self) -> str:
        return os.environ.get("FLOWER_URL", f"http://127.0.0.1:{self.flower_port}")

    @property
    def edge_url(self) -> str:
        return os.environ.get("EDGE_URL", f"http://127.0.0.1:{self.edge_port}")


INFRA = Infra()
