"""`manage.py grpcserve`: run this service's gRPC server until SIGTERM.

Reads settings.GRPC_PORT, settings.GRPC_SERVICERS (dotted paths to
`register(server) -> list[str]` callables) and settings.GRPC_HEALTH_NAMES (names
to report SERVING even without a servicer, so the process is useful to health
checks before its servicers exist).

GRPC_SERVICERS holds dotted paths, not the functions, as MIDDLEWARE does: settings
load before the apps, and a servicer module imports its app's models.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from common.grpc.server import Registrar, build_server, serve_forever
from common.topology import env_int

logger = logging.getLogger("common.grpcserve")


class Command(BaseCommand):
    help = "Serve this service's gRPC servicers and the standard health service until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=None,
            help="default: settings.GRPC_PORT; 0 picks a free port",
        )
        parser.add_argument(
            "--max-workers",
            type=int,
            default=None,
            help="pool threads, each may hold one DB connection (default: GRPC_MAX_WORKERS or 16)",
        )
        parser.add_argument(
            "--grace", type=float, default=10.0, help="seconds in-flight RPCs get on stop"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        port = options["port"]  # an explicit 0 asks for any free port
        if port is None:
            port = getattr(settings, "GRPC_PORT", 0)
            if not port:
                raise CommandError("No gRPC port: set GRPC_PORT or pass --port.")
        max_workers = options["max_workers"] or getattr(
            settings, "GRPC_MAX_WORKERS", env_int("GRPC_MAX_WORKERS", 16)
        )
        registrars: list[Registrar] = []
        for path in getattr(settings, "GRPC_SERVICERS", None) or []:
            try:
                registrars.append(import_string(path))
            except ImportError as exc:
                raise CommandError(
                    f"GRPC_SERVICERS entry {path!r} cannot be imported: {exc}"
                ) from exc

        built = build_server(
            int(port),
            registrars=registrars,
            health_names=getattr(settings, "GRPC_HEALTH_NAMES", None) or [],
            max_workers=int(max_workers),
            close_db_connections=True,
        )
        logger.info(
            "grpcserve: %s serving on port %d: %s",
            getattr(settings, "SERVICE_NAME", "service"),
            built.port,
            ", ".join(built.services) or "(health only)",
        )
        serve_forever(built, grace=options["grace"])
