"""Every process of the local platform, derived from common.topology.

supervisord groups: `infra` (PostgreSQL, Redis, Kafka, Traefik), `apps` (each
service's gunicorn, gRPC server and workers) and, with the OBSERVABILITY switch on,
`observability` (Zipkin, Prometheus). supervisord restarts
what crashes and writes each program's output to var/log/<program>.log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from common.kafka.config import GROUP_INSTANCE_ENV
from common.topology import INFRA, SERVICES
from deploy.local import paths


@dataclass(frozen=True)
class Program:
    name: str
    command: str
    group: str
    address: str = ""
    user: str | None = None
    stopsignal: str = "TERM"
    stopwaitsecs: int = 20
    startsecs: int = 2
    environment: dict[str, str] = field(default_factory=dict)
    service: str = ""  # the service an app program belongs to
    nice: int = 0  # its CPU priority: > 0 for the pipeline behind the requests
    replica: int = 1  # which copy of its kind (`make up REPLICAS=`)

    @property
    def launch(self) -> str:
        """The command supervisord runs: `command`, at its `nice` level (nice execs it,
        so the program keeps its pid and its signals)."""
        return f"nice -n {self.nice} {self.command}" if self.nice else self.command

    @property
    def kind(self) -> str:
        """The process kind this copy runs: `account-http` for `account-http-2` too."""
        return replica_name_base(self.name, self.replica)

    @property
    def log(self) -> str:
        return str(paths.LOG / f"{self.name}.log")


def observability_enabled() -> bool:
    """The switch: `make up OBSERVABILITY=1` (also on, true, yes)."""
    return os.environ.get("OBSERVABILITY", "").strip().lower() in {"1", "on", "true", "yes"}


REPLICAS_FILE = paths.RUN / "replicas"


def replicas() -> int:
    """The switch `make up REPLICAS=n`: copies of every process that scales
    (docs/adr/0023). Copy 1 keeps the plain names and ports; copy r is `<name>-r`.
    Unset, it is what the last `make up` started (so a later `make up`, `make restart`,
    `make status` or `make chaos` follows the running platform), else 1."""
    raw = os.environ.get("REPLICAS", "").strip()
    if not raw:
        try:
            raw = REPLICAS_FILE.read_text().strip()
        except OSError:
            raw = "1"
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"REPLICAS={raw!r}: give a whole number of copies, 1 or more")
    return int(raw)


def choose_replicas() -> int:
    """For `make up`: the count (as `replicas()`), remembered for the commands that
    follow; `make up REPLICAS=1` goes back to one copy."""
    copies = replicas()
    os.environ["REPLICAS"] = str(copies)
    REPLICAS_FILE.parent.mkdir(parents=True, exist_ok=True)
    REPLICAS_FILE.write_text(f"{copies}\n")
    return copies


def replica_name_base(name: str, replica: int) -> str:
    """The inverse of `replica_name`."""
    return name.removesuffix(f"-{replica}") if replica > 1 else name


def replica_name(name: str, replica: int) -> str:
    """`account-http` for copy 1, `account-http-2` for copy 2, ..."""
    return name if replica == 1 else f"{name}-{replica}"


def background_nice() -> int:
    """The nice level of the saga pipeline's processes (docs/adr/0013): the relays,
    consumers and Celery, the gRPC servers only sagas call, Kafka and the Celery broker.
    Under a burst the customers' requests get the CPU first and the pipeline catches up
    after; on an idle machine nothing changes. BACKGROUND_NICE=0 runs everything alike."""
    return int(os.environ.get("BACKGROUND_NICE", "19"))


def _gunicorn(package: str, port: int) -> str:
    workers = os.environ.get("GUNICORN_WORKERS", "2")
    threads = os.environ.get("GUNICORN_THREADS", "8")
    # The config module's child_exit tells prometheus_client a worker is gone.
    return (
        f"{paths.executable('gunicorn')} {package}.config.wsgi:application"
        " -c python:common.gunicorn_conf"
        f" --bind 127.0.0.1:{port} --workers {workers} --threads {threads}"
        " --worker-class gthread --timeout 60 --graceful-timeout 20"
        " --keep-alive 75 --max-requests 0"
    )


def infra_programs() -> list[Program]:
    pg = paths.PG_BIN / "postgres"
    progs = [
        Program(
            "postgres",
            f"{pg} -D {paths.pg_data_dir()} -c config_file={paths.ETC / 'postgresql.conf'}",
            "infra",
            address=f"{INFRA.pg_host}:{INFRA.pg_port}",
            user="postgres" if paths.IS_ROOT else None,
            stopsignal="INT",  # fast shutdown: roll back open transactions, keep data
            stopwaitsecs=60,
        ),
    ]
    for port in (*INFRA.redis_cluster_ports, INFRA.redis_broker_port):
        broker = port == INFRA.redis_broker_port
        progs.append(
            Program(
                "redis-broker" if broker else f"redis-{port}",
                f"redis-server {paths.ETC / 'redis' / f'{port}.conf'}",
                "infra",
                address=f"127.0.0.1:{port}",
                nice=background_nice() if broker else 0,  # Celery's queue: the pipeline's
            )
        )
    heap = os.environ.get("KAFKA_HEAP", "1g")
    progs.append(
        Program(
            "kafka",
            f"java -Xms256m -Xmx{heap} -XX:+UseG1GC"
            f" -Dlog4j2.configurationFile={paths.ETC / 'kafka' / 'log4j2.yaml'}"
            f" -cp '{paths.KAFKA_LIBS}/*' kafka.Kafka {paths.ETC / 'kafka' / 'server.properties'}",
            "infra",
            address=f"127.0.0.1:{INFRA.kafka_port}",
            stopwaitsecs=60,
            startsecs=5,
            nice=background_nice(),  # no request waits on Kafka: the pipeline's
        )
    )
    progs.append(
        Program(
            "traefik",
            # Through the gate that keeps clients out until its routes are loaded: it
            # execs Traefik, so the program is Traefik (deploy/local/edge_gate.py).
            f"{paths.VENV_BIN / 'python'} -m deploy.local.edge_gate"
            f" {paths.executable('traefik')} --configFile={paths.ETC / 'traefik' / 'traefik.yml'}",
            "infra",
            address=f"edge :{INFRA.edge_port}, gRPC :{INFRA.grpc_edge_port},"
            f" dashboard :{INFRA.traefik_dashboard_port}",
        )
    )
    return progs


def observability_programs() -> list[Program]:
    """Zipkin and Prometheus: run only with the switch on."""
    return [
        zipkin_program(),
        Program(
            "prometheus",
            f"{paths.executable('prometheus')} --config.file={paths.PROMETHEUS_CONF}"
            f" --storage.tsdb.path={paths.PROMETHEUS_DATA}"
            f" --web.listen-address=127.0.0.1:{INFRA.prometheus_port}"
            " --storage.tsdb.retention.time=2d",
            "observability",
            address=f"127.0.0.1:{INFRA.prometheus_port}",
        ),
        flower_program(),
    ]


def flower_program() -> Program:
    """Flower, Celery's monitor, on the orchestrator's app (its broker, its task names):
    it follows the workers' task events. Its API answers without a login: it listens on
    this machine only. Tasks kept in memory are capped; it yields the CPU like the
    pipeline it watches."""
    return Program(
        "flower",
        f"{paths.executable('celery')} -A orchestrator_svc.config flower"
        f" --address=127.0.0.1 --port={INFRA.flower_port} --max_tasks=10000",
        "observability",
        address=INFRA.flower_url,
        environment={"FLOWER_UNAUTHENTICATED_API": "true", "TRACING": "off"},
        nice=background_nice(),
    )


def zipkin_program() -> Program:
    """Zipkin's server (the exec jar deploy/bin/bootstrap fetches): takes the services'
    spans at /api/v2/spans and shows them (UI at /zipkin/), on this machine only. Spans
    stay in memory, the oldest traces dropped past ZIPKIN_MAX_SPANS; a small heap and the
    serial collector, since two cores serve everything; it yields the CPU like the
    pipeline (nothing a customer waits for)."""
    heap = os.environ.get("ZIPKIN_HEAP", "256m")
    jar = paths.DEPS / "zipkin" / "zipkin-server.jar"
    # Zipkin is a Spring Boot app: a port given in full replaces its listener list.
    listen = "--armeria.ports[0]"
    return Program(
        "zipkin",
        f"java -Xms64m -Xmx{heap} -XX:+UseSerialGC -jar {jar}"
        f" {listen}.ip=127.0.0.1 {listen}.port={INFRA.zipkin_port} {listen}.protocols[0]=http",
        "observability",
        address=INFRA.zipkin_url,
        environment={
            "STORAGE_TYPE": "mem",
            # A span holds about 3.5 KB of heap: 25,000 (some 300 purchases) fit 256 MB.
            "MEM_MAX_SPANS": os.environ.get("ZIPKIN_MAX_SPANS", "25000"),
        },
        startsecs=5,
        nice=background_nice(),
    )


def _passed_through(*names: str) -> dict[str, str]:
    return {n: os.environ[n] for n in names if n in os.environ}


def app_environment(service: str, *, observability: bool) -> dict[str, str]:
    """What every process of a service gets: its metrics directory, its name for
    the traces, the tracing switch and, with observability on, where spans go."""
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(paths.metrics_dir(service)),
        "OTEL_SERVICE_NAME": service,
        # Always set: a TRACING=off that started supervisord must not stick to later runs.
        "TRACING": os.environ.get("TRACING", "on"),
        # The SDK's sampling knobs, e.g. parentbased_traceidratio and 0.1.
        **_passed_through("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"),
    }
    if observability:
        env["OTEL_EXPORTER_ZIPKIN_ENDPOINT"] = f"{INFRA.zipkin_url}/api/v2/spans"
        # Spans leave each process every second (SDK default 5 s): a trace is whole in
        # Zipkin about when the purchase ends.
        env["OTEL_BSP_SCHEDULE_DELAY"] = os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "1000")
    return env


def app_programs(observability: bool | None = None, copies: int | None = None) -> list[Program]:
    """Each service's processes, `copies` of each that scales (default: the REPLICAS
    switch); `observability` defaults to the OBSERVABILITY switch."""
    if observability is None:
        observability = observability_enabled()
    if copies is None:
        copies = replicas()
    progs = []
    venv = paths.VENV_BIN
    for svc in SERVICES.values():
        env = app_environment(svc.name, observability=observability)
        for replica in range(1, copies + 1):
            http_port = svc.http_port_of(replica)
            progs.append(
                Program(
                    replica_name(f"{svc.name}-http", replica),
                    _gunicorn(svc.package, http_port),
                    "apps",
                    address=f"127.0.0.1:{http_port}",
                    environment=dict(env),
                    service=svc.name,
                    replica=replica,
                )
            )
            if grpc_port := svc.grpc_port_of(replica):
                progs.append(
                    Program(
                        replica_name(f"{svc.name}-grpc", replica),
                        f"{venv / 'python'} {svc.package}/manage.py grpcserve"
                        # Copy 1 listens where its settings say (GRPC_PORT), as in Docker.
                        + (f" --port {grpc_port}" if replica > 1 else ""),
                        "apps",
                        address=f"127.0.0.1:{grpc_port} (h2c)",
                        environment=dict(env),
                        service=svc.name,
                        nice=background_nice() if svc.grpc_for_sagas_only else 0,
                        replica=replica,
                    )
                )
        for worker, command in svc.workers.items():
            for replica in range(1, (copies if svc.scales(worker) else 1) + 1):
                progs.append(_worker(svc.name, worker, command, replica, env))
    return progs


def _worker(service: str, worker: str, command: str, replica: int, env: dict[str, str]) -> Program:
    exe, _, rest = command.partition(" ")
    name = replica_name(f"{service}-{worker}", replica)
    worker_env = dict(env)
    if "kafka_consume" in command:
        # Its stable name in its consumer group (static membership): restarted, it
        # takes its partitions back at once (common.kafka.config). One name per copy.
        worker_env[GROUP_INSTANCE_ENV] = name
    if " worker " in f" {rest} ":
        # Celery's node name: two workers of one name on one host confuse its
        # monitoring (and Flower); the lease owners carry the pid anyway.
        rest += f" --hostname {name}@%h"
    return Program(
        name,
        f"{paths.VENV_BIN / exe} {rest}",
        "apps",
        stopwaitsecs=30,
        environment=worker_env,
        service=service,
        nice=background_nice(),  # relays, consumers, Celery: the pipeline
        replica=replica,
    )


def all_programs(observability: bool | None = None) -> list[Program]:
    """Every program supervisord knows; `observability` defaults to the switch."""
    if observability is None:
        observability = observability_enabled()
    extra = observability_programs() if observability else []
    return infra_programs() + extra + app_programs(observability)
