"""Waiting until the platform is healthy, and saying what is not."""

from __future__ import annotations

import functools
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from common.topology import INFRA, SERVICES
from deploy.local import supervisor
from deploy.local.console import fail, step
from deploy.local.programs import Program
from deploy.local.render import grpc_authority


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_health(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200, resp.read().decode()[:300]
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read().decode()[:300]}"
    except OSError as exc:
        return False, str(exc)


def grpc_health(service: str, name: str) -> tuple[bool, str]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    options = [("grpc.default_authority", grpc_authority(service))]
    with grpc.insecure_channel(INFRA.grpc_edge_target, options=options) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=name), timeout=3
            )
        except grpc.RpcError as exc:
            return False, f"{exc.code().name}: {exc.details()}"
    ok = reply.status == health_pb2.HealthCheckResponse.SERVING
    return ok, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def edge_checks() -> dict[str, Callable[[], tuple[bool, str]]]:
    """Every check that proves a service reachable through Traefik, by name."""
    checks: dict[str, Callable[[], tuple[bool, str]]] = {}
    for svc in SERVICES.values():
        for prefix in svc.route_prefixes:
            url = f"{INFRA.edge_url}{prefix}/healthz"
            checks[f"{svc.name} http {prefix}"] = functools.partial(http_health, url)
        for name in svc.grpc_services:
            checks[f"{svc.name} grpc {name}"] = functools.partial(grpc_health, svc.name, name)
    return checks


def wait_programs(programs: list[Program], timeout: float) -> None:
    """Wait until supervisord reports every program RUNNING; name the ones that are not."""
    deadline = time.monotonic() + timeout
    while True:
        states = supervisor.status()
        bad = [p for p in programs if states.get(p.name) != "RUNNING"]
        if not bad:
            return
        fatal = [p for p in bad if states.get(p.name) in ("FATAL", "BACKOFF", "EXITED")]
        if fatal or time.monotonic() > deadline:
            names = "\n".join(
                f"  {p.name}: {states.get(p.name, 'MISSING')} (log: {p.log})"
                for p in (fatal or bad)
            )
            raise fail(f"these processes did not start:\n{names}")
        time.sleep(0.5)


def observability_ports() -> dict[str, tuple[str, int]]:
    """The ports of the observability programs, named `<program> [what]`."""
    return {
        "zipkin": ("127.0.0.1", INFRA.zipkin_port),
        "prometheus": ("127.0.0.1", INFRA.prometheus_port),
        "flower": ("127.0.0.1", INFRA.flower_port),
    }


def wait_ports(programs: list[Program], ports: dict[str, tuple[str, int]], timeout: float) -> None:
    """Wait until every port accepts; a port's name starts with its program's name."""
    deadline = time.monotonic() + timeout
    pending = dict(ports)
    while pending:
        for name, (host, port) in list(pending.items()):
            if port_open(host, port):
                pending.pop(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            logs = {p.name: p.log for p in programs}
            names = "\n".join(
                f"  {n}: nothing listens on {h}:{p} (log: {logs.get(n.split()[0], '?')})"
                for n, (h, p) in pending.items()
            )
            raise fail(f"these parts did not open their port:\n{names}")
        time.sleep(0.3)


def observability_health() -> dict[str, str]:
    """The health URLs of observability programs whose open port is not yet readiness
    (Zipkin's storage and collector come up after its listener), by program name."""
    return {"zipkin": f"{INFRA.zipkin_url}/health"}


def wait_http(programs: list[Program], urls: dict[str, str], timeout: float) -> None:
    """Wait until every URL answers 200; name each that does not, with its log."""
    deadline = time.monotonic() + timeout
    pending = dict(urls)
    last: dict[str, str] = {}
    while pending:
        for name, url in list(pending.items()):
            ok, last[name] = http_health(url)
            if ok:
                pending.pop(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            logs = {p.name: p.log for p in programs}
            names = "\n".join(
                f"  {n}: {url} answers {last[n]!r} (log: {logs.get(n, '?')})"
                for n, url in pending.items()
            )
            raise fail(f"these parts are not healthy:\n{names}")
        time.sleep(0.5)


def copy_checks(programs: list[Program]) -> dict[str, Callable[[], tuple[bool, str]]]:
    """With `REPLICAS=` > 1, each further copy of a gunicorn checked directly: through
    the edge, one healthy copy would hide a broken one."""
    checks: dict[str, Callable[[], tuple[bool, str]]] = {}
    for program in programs:
        if program.replica > 1 and program.kind == f"{program.service}-http":
            prefix = SERVICES[program.service].route_prefixes[0]
            url = f"http://{program.address}{prefix}/healthz"
            checks[f"{program.service} http copy {program.replica}"] = functools.partial(
                http_health, url
            )
    return checks


def wait_edge(programs: list[Program], timeout: float) -> None:
    checks = {**edge_checks(), **copy_checks(programs)}
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while checks:
        for name, check in list(checks.items()):
            ok, detail = check()
            if ok:
                step(f"healthy: {name}")
                checks.pop(name)
            else:
                last[name] = detail
        if not checks:
            return
        if time.monotonic() > deadline:
            logs = {p.name: p.log for p in programs}
            lines = []
            for name in checks:
                svc, kind = name.split()[0], name.split()[1]
                log = logs.get(f"{svc}-{kind}", "?")
                lines.append(f"  {name}: {last.get(name, '')} (log: {log})")
            raise fail("these services are not healthy through the edge:\n" + "\n".join(lines))
        time.sleep(0.5)


def health_json(url: str) -> dict[str, object]:
    ok, body = http_health(url)
    try:
        return json.loads(body)
    except ValueError:
        return {"status": "unreachable", "detail": body}
