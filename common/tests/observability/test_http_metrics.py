"""HTTP metrics: the middleware labels requests by URL pattern and status, and `/metrics`
exposes them. The first cases call the middleware with stand-ins; the last runs a real
Django project (the shared settings and URLs) in a fresh interpreter, since this suite
runs without Django settings."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from common.observability.django_metrics import MetricsMiddleware
from common.testing import run_python_json

PRODUCT_ROUTE = "api/v1/products/<uuid:product_id>"


def requests(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def timed(method: str, route: str) -> float:
    labels = {"method": method, "route": route}
    return REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0


def handle(method: str, path: str, route: str | None, status: int) -> None:
    match = SimpleNamespace(route=route) if route is not None else None
    request: Any = SimpleNamespace(method=method, path=path, resolver_match=match)
    MetricsMiddleware(lambda _request: SimpleNamespace(status_code=status))(request)


@pytest.mark.parametrize(
    ("method", "path", "route", "status", "label_method", "label_route"),
    [
        ("GET", "/api/v1/products/6f1c", PRODUCT_ROUTE, 200, "GET", PRODUCT_ROUTE),
        ("DELETE", "/api/v1/products/6f1c", PRODUCT_ROUTE, 503, "DELETE", PRODUCT_ROUTE),
        ("GET", "/wp-login.php", None, 404, "GET", "unmatched"),
        ("BREW", "/api/v1/products/6f1c", PRODUCT_ROUTE, 405, "other", PRODUCT_ROUTE),
    ],
)
def test_a_request_is_counted_by_pattern_method_and_status(
    method: str, path: str, route: str | None, status: int, label_method: str, label_route: str
) -> None:
    before = requests(label_method, label_route, str(status)), timed(label_method, label_route)

    handle(method, path, route, status)

    after = requests(label_method, label_route, str(status)), timed(label_method, label_route)
    assert after == (before[0] + 1, before[1] + 1)


def test_raw_paths_never_become_labels() -> None:
    handle("GET", "/api/v1/products/0b9e8d2c-1111-4000-8000-000000000001", PRODUCT_ROUTE, 200)
    routes = {
        sample.labels.get("route", "")
        for family in REGISTRY.collect()
        if family.name == "http_requests"
        for sample in family.samples
    }
    assert not any("0b9e8d2c" in route for route in routes)


DJANGO_PROJECT = """
import json, sys, types
import django
from django.conf import settings
from common.settings import build

urls = types.ModuleType("metrics_test_urls")
sys.modules[urls.__name__] = urls
settings.configure(**{**build("product", apps=[]), "ROOT_URLCONF": urls.__name__})
django.setup()

from django.http import JsonResponse
from django.test import Client
from django.urls import path
from prometheus_client.parser import text_string_to_metric_families
from common.urls import service_urlpatterns

def product(request, product_id):
    return JsonResponse({"id": str(product_id)})

def broken(request, product_id):
    raise RuntimeError("boom")

urls.urlpatterns = service_urlpatterns([
    path("api/v1/products/<uuid:product_id>", product),
    path("api/v1/products/<uuid:product_id>/broken", broken),
])

client = Client(raise_request_exception=False)
pid = "6f1c2d3e-0000-4000-8000-000000000001"
statuses = [
    client.get(f"/api/v1/products/{pid}").status_code,
    client.get(f"/api/v1/products/{pid}/broken").status_code,
    client.get("/no/such/page").status_code,
    client.get("/metrics").status_code,
]
scrape = client.get("/metrics")
text = scrape.content.decode()
samples = [
    [s.name, s.labels, s.value]
    for family in text_string_to_metric_families(text)
    for s in family.samples
    if s.name.startswith("http_")
]
out = {
    "statuses": statuses,
    "content_type": scrape["Content-Type"],
    "post_metrics": client.post("/metrics").status_code,
    "samples": samples,
}
print(json.dumps(out))
"""


def test_a_service_counts_its_requests_and_serves_them_on_metrics() -> None:
    out = run_python_json(DJANGO_PROJECT)
    assert out["statuses"] == [200, 500, 404, 200]
    assert out["content_type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert out["post_metrics"] == 405

    def value(name: str, **labels: str) -> float | None:
        for sample_name, sample_labels, sample_value in out["samples"]:
            if sample_name == name and sample_labels == labels:
                return float(sample_value)
        return None

    total = "http_requests_total"
    assert value(total, method="GET", route=PRODUCT_ROUTE, status="200") == 1
    assert value(total, method="GET", route=f"{PRODUCT_ROUTE}/broken", status="500") == 1
    assert value(total, method="GET", route="unmatched", status="404") == 1
    assert value(total, method="GET", route="metrics", status="200") == 1  # the earlier scrape
    count = "http_request_duration_seconds_count"
    assert value(count, method="GET", route=PRODUCT_ROUTE) == 1
    seconds = value("http_request_duration_seconds_sum", method="GET", route=PRODUCT_ROUTE)
    assert seconds is not None and seconds > 0
    assert not any("6f1c2d3e" in json.dumps(labels) for _, labels, _ in out["samples"])
