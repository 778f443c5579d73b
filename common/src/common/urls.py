"""URL patterns every service shares: health, admin, and its API under its prefixes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from common.health import healthz
from common.topology import SERVICES


def service_urlpatterns(api: Any = None) -> list[URLPattern | URLResolver]:
    """`/healthz` directly and under each route prefix, `/admin/<service>/`, and the API.

    `api` is a module or list of patterns mounted under the service's first route prefix
    (`/api/v1/...`): the same path the edge routes to this service.
    """
    svc = SERVICES[settings.SERVICE_NAME]
    patterns: list[URLPattern | URLResolver] = [path("healthz", healthz, name="healthz")]
    for prefix in svc.route_prefixes:
        patterns.append(path(f"{prefix.strip('/')}/healthz", healthz))
    patterns.append(path(f"admin/{svc.name}/", admin.site.urls))
    if api is not None:
        patterns.append(path("", include(api)))
    return patterns
