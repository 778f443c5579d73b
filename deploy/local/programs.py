"""Every process of the local platform, derived from common.topology.

Two supervisord groups: `infra` (PostgreSQL, Redis, Kafka, Traefik) and `apps`
(each service's gunicorn, gRPC server and workers). supervisord restarts what
crashes and writes each program's output to var/log/<program>.log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

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

    @property
    def log(self) -> str:
        return str(paths.LOG / f"{self.name}.log")


def _gunicorn(package: str, port: int) -> str:
    workers = os.environ.get("GUNICORN_WORKERS", "2")
    threads = os.environ.get("GUNICORN_THREADS", "8")
    return (
        f"{paths.executable('gunicorn')} {package}.config.wsgi:application"
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
        name = "redis-broker" if port == INFRA.redis_broker_port else f"redis-{port}"
        progs.append(
            Program(
                name,
                f"redis-server {paths.ETC / 'redis' / f'{port}.conf'}",
                "infra",
                address=f"127.0.0.1:{port}",
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
        )
    )
    progs.append(
        Program(
            "traefik",
            f"{paths.executable('traefik')} --configFile={paths.ETC / 'traefik' / 'traefik.yml'}",
            "infra",
            address=f"edge :{INFRA.edge_port}, gRPC :{INFRA.grpc_edge_port},"
            f" dashboard :{INFRA.traefik_dashboard_port}",
        )
    )
    return progs


def app_programs() -> list[Program]:
    progs = []
    venv = paths.VENV_BIN
    for svc in SERVICES.values():
        progs.append(
            Program(
                f"{svc.name}-http",
                _gunicorn(svc.package, svc.http_port),
                "apps",
                address=f"127.0.0.1:{svc.http_port}",
            )
        )
        if svc.grpc_port:
            progs.append(
                Program(
                    f"{svc.name}-grpc",
                    f"{venv / 'python'} {svc.package}/manage.py grpcserve",
                    "apps",
                    address=f"127.0.0.1:{svc.grpc_port} (h2c)",
                )
            )
        for worker, command in svc.workers.items():
            exe, _, rest = command.partition(" ")
            progs.append(
                Program(
                    f"{svc.name}-{worker}",
                    f"{venv / exe} {rest}",
                    "apps",
                    stopwaitsecs=30,
                )
            )
    return progs


def all_programs() -> list[Program]:
    return infra_programs() + app_programs()
