"""common.frontpage.links: what the edge's front page lists, without Django."""

from __future__ import annotations

import socket

import pytest

from common.frontpage.links import service_links, tcp_listens, tool_links
from common.topology import SERVICES, Infra


def test_each_service_has_its_admin_docs_schema_and_health_under_its_first_prefix() -> None:
    links = {s.name: s for s in service_links(SERVICES.values())}

    assert list(links) == list(SERVICES)
    product = links["product"]
    assert product.admin == "/admin/product/"
    assert product.swagger == "/api/v1/products/docs"
    assert product.redoc == "/api/v1/products/redoc"
    assert product.schema == "/api/v1/products/schema"
    assert product.health == "/api/v1/products/healthz"


def test_only_the_traefik_dashboard_is_listed_when_no_optional_tool_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FRONT_PAGE_TOOLS", raising=False)
    asked: list[str] = []

    def nothing_runs(url: str) -> bool:
        asked.append(url)
        return False

    links = tool_links(Infra(traefik_dashboard_port=8080), probe=nothing_runs)

    assert [link.title for link in links] == ["Traefik dashboard"]
    assert links[0].href == "http://127.0.0.1:8080/dashboard/"
    assert len(asked) == 3  # Zipkin, Prometheus, Flower: the dashboard is never probed


def test_a_running_tool_is_listed_at_its_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZIPKIN_URL", "http://127.0.0.1:19411")
    monkeypatch.setenv("FLOWER_URL", "http://127.0.0.1:15555")
    infra = Infra(prometheus_port=19090)

    links = {link.title: link.href for link in tool_links(infra, probe=lambda url: True)}

    assert links == {
        "Traefik dashboard": f"http://127.0.0.1:{infra.traefik_dashboard_port}/dashboard/",
        "Zipkin": "http://127.0.0.1:19411/zipkin/",
        "Prometheus": "http://127.0.0.1:19090/",
        "Flower": "http://127.0.0.1:15555/",
    }


def test_front_page_tools_all_lists_every_tool_without_probing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRONT_PAGE_TOOLS", "all")
    # Ports nobody listens on: only the switch can list them.
    monkeypatch.setenv("ZIPKIN_URL", f"http://127.0.0.1:{closed_port()}")

    titles = [link.title for link in tool_links(Infra())]

    assert titles == ["Traefik dashboard", "Zipkin", "Prometheus", "Flower"]


def closed_port() -> int:
    """A port of this machine that nothing listens on (just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_tcp_listens_tells_an_open_port_from_a_closed_one() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        open_port = server.getsockname()[1]
        assert tcp_listens(f"http://127.0.0.1:{open_port}/zipkin/")
    assert not tcp_listens(f"http://127.0.0.1:{closed_port()}/")
