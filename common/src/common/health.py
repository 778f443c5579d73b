"""`/healthz`: a service is healthy when its own database and dependencies answer.

Each check is a function answering None when fine or raising with a reason.
A service lists its checks in `settings.HEALTH_CHECKS` (dotted paths).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string

from common.topology import INFRA


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis_cluster() -> None:
    from common.redis_cluster import cluster_client

    info = cluster_client().cluster_info()
    if info.get("cluster_state") != "ok":
        raise RuntimeError(f"cluster_state={info.get('cluster_state')}")


def _tcp_reachable(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=1.0):
        pass


def check_kafka() -> None:
    host, _, port = settings.KAFKA_BOOTSTRAP_SERVERS.split(",")[0].rpartition(":")
    _tcp_reachable(host, int(port))


def check_celery_broker() -> None:
    url = urlparse(INFRA.celery_broker_url)
    _tcp_reachable(url.hostname or "127.0.0.1", url.port or 6379)


def run_checks() -> dict[str, str]:
    results: dict[str, str] = {}
    for path in settings.HEALTH_CHECKS:
        check: Callable[[], None] = import_string(path)
        name = path.rsplit(".", 1)[-1].removeprefix("check_")
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # a health probe reports, it never raises
            results[name] = f"error: {exc.__class__.__name__}: {exc}"[:300]
    return results


def healthz(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    checks = run_checks()
    healthy = all(v == "ok" for v in checks.values())
    body = {
        "service": settings.SERVICE_NAME,
        "status": "ok" if healthy else "unhealthy",
        "checks": checks,
        "took_ms": round((time.monotonic() - started) * 1000, 1),
    }
    return JsonResponse(body, status=200 if healthy else 503)
