"""Traefik routes each prefix to its service, and each gRPC service by name."""

import pytest
import requests

from common.topology import INFRA, SERVICES
from deploy.local.health import grpc_health

ROUTES = [(s.name, prefix) for s in SERVICES.values() for prefix in s.route_prefixes]
GRPC = [(s.name, name) for s in SERVICES.values() for name in s.grpc_services]


@pytest.mark.parametrize(("service", "prefix"), ROUTES)
def test_each_route_prefix_reaches_its_service_health(service: str, prefix: str) -> None:
    response = requests.get(f"{INFRA.edge_url}{prefix}/healthz", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service"] == service
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"


@pytest.mark.parametrize(("service", "name"), GRPC)
def test_each_grpc_service_answers_a_health_check_through_the_grpc_entrypoint(
    service: str, name: str
) -> None:
    ok, detail = grpc_health(service, name)
    assert ok, detail


def test_a_grpc_service_is_not_reachable_under_another_services_authority() -> None:
    # The account process serves only auth.AuthService: routing really is per service.
    ok, detail = grpc_health("account", "product.ProductService")
    assert not ok
    assert "NOT_FOUND" in detail


@pytest.mark.parametrize("service", SERVICES)
def test_admin_asks_an_anonymous_visitor_to_log_in(service: str) -> None:
    response = requests.get(f"{INFRA.edge_url}/admin/{service}/", timeout=10, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"/admin/{service}/login/")
    login = requests.get(f"{INFRA.edge_url}/admin/{service}/login/", timeout=10)
    assert login.status_code == 200
    assert "csrfmiddlewaretoken" in login.text
