"""Django settings shared by every service, built from environment variables.

Each service's `config/settings.py` calls `build()` with its name and its apps;
nothing else in a service's settings should repeat what is here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common.cache.config import cache_settings
from common.topology import INFRA, SERVICES

REPO_ROOT = Path(__file__).resolve().parents[3]
VAR_DIR = Path(os.environ.get("SAGA_VAR_DIR", REPO_ROOT / "var"))


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


def max_body_bytes() -> int:
    """`MAX_BODY_BYTES` (64 KiB): the largest request body Django reads and the edge
    forwards (Traefik's buffering limit, deploy/local/render.py): one limit, one place."""
    return int(env("MAX_BODY_BYTES", str(64 * 1024)))


def dev_password(role: str) -> str:
    """DEVELOPMENT DEFAULT ONLY: the local platform's password for a database role."""
    return f"{role}-dev-password"


def db_password(service: str) -> str:
    """`<SERVICE>_DB_PASSWORD`, or the development default for the local platform."""
    return env(f"{service.upper()}_DB_PASSWORD", dev_password(f"{service}_svc"))


def build(
    service: str,
    *,
    apps: list[str],
    health_checks: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Answer the settings of one service as a dict for `globals().update(...)`."""
    svc = SERVICES[service]
    debug = env_bool("DJANGO_DEBUG", False)
    settings: dict[str, Any] = {
        "SERVICE_NAME": service,
        "BASE_DIR": REPO_ROOT / svc.package,
        # DEVELOPMENT DEFAULT ONLY; production sets DJANGO_SECRET_KEY.
        "SECRET_KEY": env("DJANGO_SECRET_KEY", f"dev-insecure-{service}-secret-key-change-me"),
        "DEBUG": debug,
        "ALLOWED_HOSTS": env("DJANGO_ALLOWED_HOSTS", "*").split(","),
        "INSTALLED_APPS": [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "rest_framework",
            "drf_spectacular",
            # Swagger UI's and Redoc's files, served by us (no CDN: the docs work offline).
            "drf_spectacular_sidecar",
            "common",
            # One admin identity for all six services (docs/adr/0019).
            "common.admin_identity",
            *apps,
        ],
        "MIDDLEWARE": [
            # First: it counts and times every response, including the ones the
            # middleware below answers on its own.
            "common.observability.django_metrics.MetricsMiddleware",
            "django.middleware.security.SecurityMiddleware",
            "whitenoise.middleware.WhiteNoiseMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            # An admin page whose roles the account service cannot confirm: 503, not 500.
            "common.admin_identity.middleware.IdentityUnavailableMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
            # Last: a lost database in a view outside DRF answers 503, not 500.
            "common.errors.DatabaseUnavailableMiddleware",
        ],
        "ROOT_URLCONF": f"{svc.package}.config.urls",
        "WSGI_APPLICATION": f"{svc.package}.config.wsgi.application",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "DATABASES": {
            "default": {
                "ENGINE": "common.postgresql",
                "NAME": env("DB_NAME", svc.database),
                "USER": env("DB_USER", svc.db_role),
                "PASSWORD": db_password(service),
                "HOST": env("DB_HOST", INFRA.pg_host),
                "PORT": env("DB_PORT", str(INFRA.pg_port)),
                # Persistent connections: one per worker thread, reused across requests.
                "CONN_MAX_AGE": int(env("DB_CONN_MAX_AGE", "300")),
                "CONN_HEALTH_CHECKS": True,
            }
        },
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        # Admin logins are account-service staff accounts (docs/adr/0019): checked and
        # their roles re-read by gRPC on every admin request; staff may view, superusers
        # change. The account service overrides the first with its local one.
        "AUTHENTICATION_BACKENDS": [
            "common.admin_identity.backends.AccountServiceBackend",
            "common.admin_identity.backends.StaffViewsBackend",
        ],
        "ADMIN_IDENTITY_TIMEOUT_SECONDS": float(env("ADMIN_IDENTITY_TIMEOUT_SECONDS", "3")),
        "LANGUAGE_CODE": "en-us",
        "TIME_ZONE": "UTC",
        "USE_I18N": False,
        "USE_TZ": True,
        # Six services share one host behind the edge: keep their cookies and
        # static files apart.
        "STATIC_URL": f"/static/{service}/",
        "STATIC_ROOT": VAR_DIR / "static" / service,
        "SESSION_COOKIE_NAME": f"{service}_sessionid",
        "CSRF_COOKIE_NAME": f"{service}_csrftoken",
        "DATA_UPLOAD_MAX_MEMORY_SIZE": max_body_bytes(),
        "REST_FRAMEWORK": {
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            # JSON only, bounded by DATA_UPLOAD_MAX_MEMORY_SIZE (413 beyond it).
            "DEFAULT_PARSER_CLASSES": ["common.parsers.JSONParser"],
            "UNAUTHENTICATED_USER": None,
            # Every endpoint needs an access token unless it opts out (AllowAny).
            "DEFAULT_AUTHENTICATION_CLASSES": ["common.auth.JWTAuthentication"],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            "EXCEPTION_HANDLER": "common.errors.exception_handler",
            "DEFAULT_SCHEMA_CLASS": "common.openapi.AutoSchema",
            # Traefik is the one proxy in front: the client is the last X-Forwarded-For hop.
            "NUM_PROXIES": int(env("NUM_PROXIES", "1")),
        },
        "SPECTACULAR_SETTINGS": {
            "TITLE": f"{service} service API",
            "DESCRIPTION": f"The {service} service of the saga-orchestration e-commerce backend.",
            "VERSION": "1.0.0",
            "SERVE_INCLUDE_SCHEMA": False,
            "COMPONENT_SPLIT_REQUEST": True,
            "SCHEMA_PATH_PREFIX": r"/api/v1",
            # The contract the answers keep (common.openapi, docs/adr/0017-api-contract.md).
            "PREPROCESSING_HOOKS": ["common.openapi.canonical_paths"],
            "ENUM_NAME_OVERRIDES": {"ErrorCodeEnum": "common.openapi.ERROR_CODES"},
            # The docs pages load their scripts from our static files (docs/adr/0020).
            "SWAGGER_UI_DIST": "SIDECAR",
            "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
            "REDOC_DIST": "SIDECAR",
            # No badge from swagger.io's online validator: nothing leaves this machine.
            "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
        },
        # Access tokens (common.auth): RS256, signed by the account service only,
        # verified locally by every service with the public key (common.jwt_keys).
        "JWT_ALGORITHM": "RS256",
        "JWT_ISSUER": env("JWT_ISSUER", "saga-account"),
        "JWT_LEEWAY_SECONDS": int(env("JWT_LEEWAY_SECONDS", "0")),
        "JWT_ACCESS_TOKEN_LIFETIME_SECONDS": int(env("JWT_ACCESS_TOKEN_LIFETIME_SECONDS", "900")),
        "JWT_REFRESH_TOKEN_LIFETIME_SECONDS": int(
            env("JWT_REFRESH_TOKEN_LIFETIME_SECONDS", str(7 * 24 * 3600))
        ),
        "HEALTH_CHECKS": ["common.health.check_database", *(health_checks or [])],
        "KAFKA_BOOTSTRAP_SERVERS": INFRA.kafka_bootstrap,
        "REDIS_CLUSTER_NODES": INFRA.redis_cluster_nodes,
        # CACHES["default"] (django-redis on the cluster) and the CACHE_* settings that
        # common.cache reads: key prefix = service name, short timeouts, local-level size.
        **cache_settings(service),
        "GRPC_EDGE_TARGET": INFRA.grpc_edge_target,
        "GRPC_PORT": int(env("GRPC_PORT", str(svc.grpc_port or 0))),
        # Registrars of this service's servicers (dotted paths); health covers these names.
        "GRPC_SERVICERS": [],
        "GRPC_HEALTH_NAMES": list(svc.grpc_services),
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            },
            "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"handlers": ["stdout"], "level": env("LOG_LEVEL", "INFO")},
        },
    }
    settings.update(extra or {})
    return settings
