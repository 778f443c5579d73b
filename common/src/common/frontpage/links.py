"""What the front page links to, built from common.topology.

Pure functions of the topology and a port probe, so they are tested without Django.
The services' pages are paths on the edge; the tools (Traefik's dashboard, Zipkin,
Prometheus, Flower) are absolute URLs on this machine, and a tool that is optional
(OBSERVABILITY=1 locally) is listed only while something listens on its port.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from common.topology import INFRA, SERVICES, Infra, Service

# A refused connection on this machine answers at once; the timeout only bounds a
# firewalled or hung port, so that the page never waits long on a tool.
PROBE_TIMEOUT_SECONDS = 0.3

Probe = Callable[[str], bool]


@dataclass(frozen=True)
class Link:
    title: str
    href: str
    note: str = ""


@dataclass(frozen=True)
class ServiceLinks:
    """One service's pages on the edge."""

    name: str
    admin: str
    swagger: str
    redoc: str
    schema: str
    health: str


def service_links(services: Iterable[Service]) -> list[ServiceLinks]:
    """The admin, API docs (as common.urls.openapi_urlpatterns mounts them) and health
    check of each service: paths on the edge, under the service's first route prefix."""
    out = []
    for svc in services:
        prefix = svc.route_prefixes[0].rstrip("/")
        out.append(
            ServiceLinks(
                name=svc.name,
                admin=f"/admin/{svc.name}/",
                swagger=f"{prefix}/docs",
                redoc=f"{prefix}/redoc",
                schema=f"{prefix}/schema",
                health=f"{prefix}/healthz",
            )
        )
    return out


def tcp_listens(url: str) -> bool:
    """Whether something accepts a TCP connection at the host and port of `url`."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def show_all_tools() -> bool:
    """`FRONT_PAGE_TOOLS=all` lists every tool without probing it: for a deployment where
    they always run but not at the addresses the service itself can reach (docker-compose
    publishes them on the host's 127.0.0.1). Default `running`: only those that answer."""
    return os.environ.get("FRONT_PAGE_TOOLS", "running").strip().lower() == "all"


def tool_links(infra: Infra = INFRA, probe: Probe | None = None) -> list[Link]:
    """Traefik's dashboard (it runs with the edge), then the trace UI, Prometheus and
    Flower while they run. `probe(url)` says whether a tool runs (default: tcp_listens)."""
    if probe is None:
        probe = (lambda url: True) if show_all_tools() else tcp_listens
    dashboard = Link(
        "Traefik dashboard",
        f"http://127.0.0.1:{infra.traefik_dashboard_port}/dashboard/",
        "routers, services and their health",
    )
    optional = [
        Link("Zipkin", f"{infra.zipkin_url.rstrip('/')}/zipkin/", "traces of every request"),
        Link(
            "Prometheus",
            f"http://127.0.0.1:{infra.prometheus_port}/",
            "metrics of every service and of the edge",
        ),
        Link("Flower", f"{infra.flower_url.rstrip('/')}/", "Celery workers and tasks"),
    ]
    return [dashboard, *(link for link in optional if probe(link.href))]


def all_services() -> list[ServiceLinks]:
    return service_links(SERVICES.values())
