"""Container health checks of the service image: `python -m deploy.docker.healthcheck MODE ...`.

Exit 0 when healthy, 1 with a one-line reason otherwise (Docker keeps the last output).

    http PORT            the service answers its own /healthz (200, or 503 with its JSON
                         report): the process serves. A failing dependency is reported by
                         /healthz, not by taking the container out of Traefik's rotation
                         (Traefik's Docker provider drops unhealthy containers, and a 404
                         from the edge would hide the service's own JSON 503).
    grpc PORT NAME...    the standard gRPC health check answers SERVING for each NAME
    celery APP           the worker of this container answers a Celery ping
    beat FILE MAX_AGE    celery beat synced its schedule FILE within MAX_AGE seconds
                         (it syncs every 3 minutes while it dispatches)
    tcp HOST:PORT...     each dependency accepts a TCP connection (relays, consumers)
"""

from __future__ import annotations

import glob
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

TIMEOUT = 5.0


class Unhealthy(Exception):
    pass


def check_http(port: str) -> str:
    url = f"http://127.0.0.1:{int(port)}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            return f"{url}: {resp.status}"
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            report = json.loads(body)
        except ValueError:
            report = None
        if exc.code == 503 and isinstance(report, dict) and "checks" in report:
            return f"{url}: serving, dependencies report {report['checks']}"
        raise Unhealthy(f"{url}: HTTP {exc.code}: {body[:200]}") from None
    except OSError as exc:
        raise Unhealthy(f"{url}: {exc}") from None


def check_grpc(port: str, *names: str) -> str:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    serving = health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(f"127.0.0.1:{int(port)}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in names or ("",):
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT)
            except grpc.RpcError as exc:
                raise Unhealthy(f"{name or 'server'}: {exc.code().name}") from None
            if reply.status != serving:
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                raise Unhealthy(f"{name or 'server'}: {status}")
    return f"SERVING: {', '.join(names) or 'server'}"


def check_celery(app_path: str) -> str:
    from importlib import import_module

    module = import_module(app_path)
    app = getattr(module, "app", None) or module.celery  # what `celery -A` finds
    # The worker's node name is `<program>@<host>` (its --hostname): this host's worker
    # is whichever node answers under this host's name.
    host = f"@{socket.gethostname()}"
    replies = app.control.ping(timeout=TIMEOUT)
    nodes = [node for reply in replies or [] for node in reply if node.endswith(host)]
    if not nodes:
        raise Unhealthy(f"no worker *{host} answered a ping")
    return f"{nodes[0]}: pong"


def check_beat(schedule: str, max_age: str) -> str:
    files = glob.glob(f"{schedule}*")
    if not files:
        raise Unhealthy(f"no schedule file {schedule}*")
    age = time.time() - max(os.path.getmtime(f) for f in files)
    if age > float(max_age):
        raise Unhealthy(f"schedule {schedule} last synced {age:.0f}s ago (> {max_age}s)")
    return f"schedule synced {age:.0f}s ago"


def check_tcp(*addresses: str) -> str:
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=TIMEOUT):
                pass
        except OSError as exc:
            raise Unhealthy(f"{address}: {exc}") from None
    return f"reachable: {', '.join(addresses)}"


MODES: dict[str, Callable[..., str]] = {
    "http": check_http,
    "grpc": check_grpc,
    "celery": check_celery,
    "beat": check_beat,
    "tcp": check_tcp,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in MODES:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        print(MODES[argv[0]](*argv[1:]))
    except Unhealthy as exc:
        print(f"unhealthy: {exc}")
        return 1
    except Exception as exc:  # a probe reports; Docker shows the last line
        print(f"unhealthy: {exc.__class__.__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
