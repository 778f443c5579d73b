"""URL patterns every service shares: health, admin, and its API under its prefixes.

A service's root urlconf also imports `handler400`, `handler403`, `handler404` and
`handler500` from here, so that errors outside DRF views (an unknown path, say)
answer the same JSON shape as the API.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from common.errors import json_edge_error
from common.frontpage.views import admin_index, front_page
from common.health import healthz
from common.observability.django_metrics import metrics_view
from common.topology import SERVICES

# Django's error views as JSON (common.errors); see the module docstring.
handler400 = "common.errors.json_bad_request"
handler403 = "common.errors.json_permission_denied"
handler404 = "common.errors.json_not_found"
handler500 = "common.errors.json_server_error"


def service_urlpatterns(api: Any = None) -> list[URLPattern | URLResolver]:
    """`/healthz` directly and under each route prefix, `/metrics` (Prometheus; on the
    service's own port only, the edge does not route it), `/edge-errors/<status>` (the
    JSON body of a refusal Traefik makes itself; not routed either), `/admin/<service>/`,
    the front page `/` and the admin index `/admin/` (every service has them; the edge
    routes them to one, docs/adr/0020), and the API.

    `api` is a module or list of patterns mounted under the service's first route prefix
    (`/api/v1/...`): the same path the edge routes to this service.
    """
    svc = SERVICES[settings.SERVICE_NAME]
    patterns: list[URLPattern | URLResolver] = [
        path("healthz", healthz, name="healthz"),
        path("metrics", metrics_view, name="metrics"),
        path("edge-errors/<int:status>", json_edge_error, name="edge-error"),
        path("", front_page, name="front-page"),
        path("admin/", admin_index, name="admin-index"),
    ]
    for prefix in svc.route_prefixes:
        patterns.append(path(f"{prefix.strip('/')}/healthz", healthz))
    patterns.append(path(f"admin/{svc.name}/", admin.site.urls))
    if api is not None:
        patterns.append(path("", include(api)))
    return patterns


def openapi_urlpatterns() -> list[URLPattern | URLResolver]:
    """The service's OpenAPI schema and docs under its first route prefix:
    `<prefix>/schema` (YAML, or JSON with `?format=json`), `<prefix>/docs` (Swagger UI)
    and `<prefix>/redoc`. Public: the API's shape is no secret. The pages load Swagger
    UI and Redoc from our static files (drf-spectacular-sidecar), nothing from a CDN.
    """
    from drf_spectacular.views import (
        SpectacularAPIView,
        SpectacularRedocView,
        SpectacularSwaggerView,
    )
    from rest_framework.permissions import AllowAny

    import common.openapi  # noqa: F401  (registers the bearer-token scheme)

    svc = SERVICES[settings.SERVICE_NAME]
    prefix = svc.route_prefixes[0].strip("/")
    schema_name = f"{svc.name}-openapi-schema"
    return [
        path(
            f"{prefix}/schema",
            SpectacularAPIView.as_view(permission_classes=[AllowAny]),
            name=schema_name,
        ),
        path(
            f"{prefix}/docs",
            SpectacularSwaggerView.as_view(url_name=schema_name, permission_classes=[AllowAny]),
            name=f"{svc.name}-openapi-docs",
        ),
        path(
            f"{prefix}/redoc",
            SpectacularRedocView.as_view(
                url_name=schema_name,
                permission_classes=[AllowAny],
                # Its page without the Google Fonts links of drf-spectacular's own.
                template_name="openapi/redoc.html",
            ),
            name=f"{svc.name}-openapi-redoc",
        ),
    ]
