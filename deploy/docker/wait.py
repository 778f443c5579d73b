"""`make docker-up` waits here until every service answers through the Docker edge.

The same checks as `make up` (deploy.local.health.edge_checks): each route prefix's
/healthz answers 200 through Traefik, and each gRPC service answers SERVING through
the gRPC entrypoint. Runs on the host, against the published ports (DOCKER_EDGE_PORT,
DOCKER_GRPC_EDGE_PORT from the environment or .env).

    python -m deploy.docker.wait [TIMEOUT_SECONDS]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def compose_setting(name: str, default: str) -> str:
    """A variable as docker compose sees it: the environment first, then .env."""
    if name in os.environ:
        return os.environ[name]
    env_file = REPO / ".env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key == name:
                return value.strip().strip("'\"")
    return default


def main() -> None:
    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else 300.0
    # Point the shared checks at the Docker edge, whatever the shell says for `make up`.
    os.environ["EDGE_URL"] = f"http://127.0.0.1:{compose_setting('DOCKER_EDGE_PORT', '80')}"
    os.environ["GRPC_EDGE_TARGET"] = (
        f"127.0.0.1:{compose_setting('DOCKER_GRPC_EDGE_PORT', '50050')}"
    )
    from deploy.local.health import edge_checks

    checks = edge_checks()
    last: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while checks:
        for name, check in list(checks.items()):
            ok, detail = check()
            if ok:
                print(f"healthy: {name}", flush=True)
                checks.pop(name)
            else:
                last[name] = detail
        if not checks:
            break
        if time.monotonic() > deadline:
            lines = [
                f"  {name}: {last.get(name, '')} (docker compose logs {'-'.join(name.split()[:2])})"
                for name in checks
            ]
            print("not healthy through the edge:\n" + "\n".join(lines), file=sys.stderr)
            print("see `docker compose ps` for every container's health", file=sys.stderr)
            raise SystemExit(1)
        time.sleep(1.0)
    print(f"everything answers through {os.environ['EDGE_URL']}")


if __name__ == "__main__":
    main()
