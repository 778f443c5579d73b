"""HTTP metrics of a Django service, and the `/metrics` view that exposes all of them.

Requests are labelled by the URL *pattern* they matched (`api/v1/products/<uuid:product_id>`),
never by the raw path, so the number of series stays bounded whatever clients send.
`/metrics` is routed on the service's own port only: the edge routes `/api/v1/<prefix>`,
`/admin/<service>` and `/static/<service>` paths, so it is not public.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from common.observability.metrics import counter, histogram, metrics_registry

HTTP_REQUESTS = counter(
    "http_requests",
    "HTTP requests answered, by method, matched URL pattern and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = histogram(
    "http_request_duration_seconds",
    "Seconds from a request's arrival to its response (to the headers, for a stream).",
    ["method", "route"],
)

UNMATCHED = "unmatched"
"""The route of a request no URL pattern matched (a 404, or a redirect to add a slash)."""
STATIC = "static"
"""The route of files WhiteNoise serves before URL resolution."""
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_route(request: HttpRequest, static_url: str | None = None) -> str:
    """The URL pattern `request` matched, `static`, or `unmatched`."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.route or "/"
    if static_url and request.path.startswith(static_url):
        return STATIC
    return UNMATCHED


class MetricsMiddleware:
    """Count and time every request. First in MIDDLEWARE: it sees every response, also
    those another middleware answers without calling the view (a redirect, a static
    file), and Django turns any exception below it into a 500 response first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.static_url = (settings.STATIC_URL or None) if settings.configured else None

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        start = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - start
        method = request.method if request.method in KNOWN_METHODS else "other"
        route = request_route(request, self.static_url)
        HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
        HTTP_DURATION.labels(method, route).observe(elapsed)
        return response


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of every process of this service (no auth: not routed
    at the edge, see the module docstring)."""
    # generate_latest writes the classic text format (names escaped with underscores),
    # which is what text/plain 0.0.4 announces and every Prometheus (ours: 2.x) parses.
    body = generate_latest(metrics_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
