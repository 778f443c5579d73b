"""The local platform: `python -m deploy.local up|down|clean|status|logs`.

`make up` runs deploy/bin/bootstrap (installs what is missing) and then `up`, which:
renders every configuration from common.topology, starts supervisord, starts the
infrastructure, provisions it (databases and roles, the Redis Cluster, Kafka topics),
migrates every service, starts every service process, waits until each answers
through Traefik, and prints what runs where. Every step is idempotent.

OBSERVABILITY=1 (`make up OBSERVABILITY=1`, also for `restart`) adds Zipkin and
Prometheus, and points every service's spans at Zipkin; without it they are stopped
and the services export no spans.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from common.topology import INFRA, SERVICES
from deploy.local import health, kafka, keys, paths, postgres, redis_cluster, render, supervisor
from deploy.local.console import fail, step, table
from deploy.local.programs import (
    Program,
    all_programs,
    app_programs,
    choose_replicas,
    infra_programs,
    observability_enabled,
    observability_programs,
)

# supervisord states in which a process exists (or is about to)
ACTIVE = ("RUNNING", "STARTING", "BACKOFF", "STOPPING")


def migrate() -> None:
    procs = {
        svc.name: subprocess.Popen(
            [sys.executable, f"{svc.package}/manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=paths.REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for svc in SERVICES.values()
    }
    for name, proc in procs.items():
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise fail(f"migrations of {name} failed:\n{out}")
    step(f"migrations applied ({', '.join(procs)})")


def collectstatic() -> None:
    # Every time: it copies only what changed (under a second a service), and a new
    # app's files (the API docs' scripts, say) reach an existing platform too.
    for svc in SERVICES.values():
        subprocess.run(
            [sys.executable, f"{svc.package}/manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=paths.REPO,
            check=True,
        )
    step("static files collected")


def reset_metrics_dirs(apps: list[Program]) -> None:
    """Empty each service's PROMETHEUS_MULTIPROC_DIR before its processes start.

    The files of dead processes would be summed forever (and their pids reused).
    A service with any process still up keeps its directory: its live processes
    write into files there.
    """
    states = supervisor.status()
    live = {p.service for p in apps if states.get(p.name) in ACTIVE}
    for service in dict.fromkeys(p.service for p in apps):
        directory = paths.metrics_dir(service)
        if service not in live:
            shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)


def start_observability(observability: bool, changed: set[str]) -> list[Program]:
    """With the switch on, start Zipkin and Prometheus and wait until they are ready
    (before the services, whose first spans go to Zipkin); answer what was started."""
    if not observability:
        step("observability: off (make up OBSERVABILITY=1 adds traces and Prometheus)")
        return []
    progs = observability_programs()
    supervisor.restart_if_running(sorted(changed & {p.name for p in progs}))
    step("observability: on, starting " + ", ".join(p.name for p in progs))
    supervisor.start([p.name for p in progs])
    health.wait_ports(progs, health.observability_ports(), timeout=60)
    health.wait_http(progs, health.observability_health(), timeout=60)
    health.wait_programs(progs, timeout=30)
    return progs


def up() -> None:
    started = time.monotonic()
    observability = observability_enabled()
    copies = choose_replicas()
    if copies > 1:
        step(f"replicas: {copies} copies of every process that scales (docs/adr/0023)")
    changed = render.render_all(observability)
    postgres.ensure_initialized()
    kafka.ensure_formatted()
    keys.ensure_dev_keys()
    supervisor.ensure_running()  # a changed environment restarts the group (apps)
    supervisor.restart_if_running(sorted(changed))

    infra = infra_programs()
    step("starting infrastructure: " + ", ".join(p.name for p in infra))
    supervisor.start([p.name for p in infra])
    ports = {"postgres": (INFRA.pg_host, INFRA.pg_port), "kafka": ("127.0.0.1", INFRA.kafka_port)}
    for port in INFRA.redis_cluster_ports:
        ports[f"redis-{port}"] = ("127.0.0.1", port)
    ports["redis-broker"] = ("127.0.0.1", INFRA.redis_broker_port)
    ports["traefik"] = ("127.0.0.1", INFRA.grpc_edge_port)
    health.wait_ports(infra, ports, timeout=90)
    health.wait_programs(infra, timeout=30)
    step("infrastructure is listening")
    start_observability(observability, changed)

    postgres.provision()
    redis_cluster.ensure_cluster()
    kafka.ensure_topics()
    migrate()
    collectstatic()

    apps = app_programs(observability)
    reset_metrics_dirs(apps)
    step(f"starting {len(apps)} service processes")
    supervisor.start([p.name for p in apps])
    health.wait_programs(apps, timeout=60)
    health.wait_edge(apps, timeout=90)
    step(f"everything is up in {time.monotonic() - started:.1f}s")
    print()
    print_table(observability)


def restart() -> None:
    """After a code change: migrate, restart every service process, wait until healthy."""
    if not supervisor.running():
        raise fail("the platform is down: run make up")
    observability = observability_enabled()
    changed = render.render_all(observability)
    supervisor.ensure_running()  # loads changed process definitions
    start_observability(observability, changed)
    migrate()
    apps = app_programs(observability)
    step(f"restarting {len(apps)} service processes")
    supervisor.stop([p.name for p in apps])
    reset_metrics_dirs(apps)
    supervisor.start([p.name for p in apps])
    health.wait_programs(apps, timeout=60)
    health.wait_edge(apps, timeout=90)
    step("restarted")
    if observability:
        print_observability()


def print_table(observability: bool) -> None:
    states = supervisor.status()
    rows = [
        (p.name, states.get(p.name, "-"), p.address, p.log) for p in all_programs(observability)
    ]
    table(rows, ("process", "state", "address", "log"))
    print()
    print(f"Edge (REST):        {INFRA.edge_url}   e.g. {INFRA.edge_url}/api/v1/products")
    print(f"Edge (gRPC, h2c):   {INFRA.grpc_edge_target}")
    print(f"Traefik dashboard:  http://127.0.0.1:{INFRA.traefik_dashboard_port}/dashboard/")
    print(f"Front page:         {INFRA.edge_url}/   (every admin, the API docs, the tools)")
    print(f"Admin:              {INFRA.edge_url}/admin/<service>/  (make superuser EMAIL=...)")
    if observability:
        print_observability()
    else:
        print("Observability:      off   (make up OBSERVABILITY=1: traces and Prometheus)")
    print(f"Logs:               {paths.LOG}   (make logs)")
    print(f"Data:               {paths.VAR}   (make down keeps it, make clean removes it)")


def print_observability() -> None:
    prometheus = f"http://127.0.0.1:{INFRA.prometheus_port}"
    print(f"Traces (Zipkin):    {INFRA.zipkin_url}/zipkin/")
    # Debian's Prometheus has only the classic UI.
    print(f"Prometheus:         {prometheus}/   (targets: {prometheus}/classic/targets)")


def status() -> None:
    if not supervisor.running():
        print("the platform is down (make up starts it)")
        raise SystemExit(3)
    # What runs, whatever this shell's OBSERVABILITY says.
    print_table("zipkin" in supervisor.status())
    print()
    rows = []
    for svc in SERVICES.values():
        body = health.health_json(f"{INFRA.edge_url}{svc.route_prefixes[0]}/healthz")
        rows.append((svc.name, str(body.get("status")), str(body.get("checks", body))))
    table(rows, ("service", "health", "checks"))


def clean() -> None:
    supervisor.shutdown()
    for child in paths.VAR.iterdir() if paths.VAR.exists() else []:
        if child != paths.DEPS:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    pg = paths.pg_data_dir()
    if pg.exists():
        shutil.rmtree(pg)
    step(f"removed the platform's data (kept downloads in {paths.DEPS})")


def logs() -> None:
    files = sorted(str(p) for p in paths.LOG.glob("*.log"))
    if not files:
        raise fail(f"no logs in {paths.LOG}")
    os.execvp("tail", ["tail", "-n", "20", "-F", *files])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.local")
    parser.add_argument(
        "command", choices=["up", "down", "restart", "clean", "status", "logs", "render"]
    )
    args = parser.parse_args()
    {
        "up": up,
        "down": supervisor.shutdown,
        "restart": restart,
        "clean": clean,
        "status": status,
        "logs": logs,
        "render": lambda: render.render_all(),
    }[args.command]()


if __name__ == "__main__":
    main()
