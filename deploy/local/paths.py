"""Where the local platform keeps its state: everything under var/ (git-ignored)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VAR = Path(os.environ.get("SAGA_VAR_DIR", REPO / "var"))
LOG = VAR / "log"
RUN = VAR / "run"
ETC = VAR / "etc"
DEPS = VAR / "deps"  # downloaded once, kept by `make clean`
KAFKA_LIBS = DEPS / "kafka-libs"
KAFKA_DATA = VAR / "kafka"
REDIS_DATA = VAR / "redis"
VENV_BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_SOCKET_DIR = RUN / "postgresql"
SUPERVISOR_CONF = ETC / "supervisord.conf"
# Observability: spans of the local trace collector, Prometheus' storage, and one
# directory per service where its processes write their metrics (prometheus_client's
# multiprocess mode; wiped before the service starts).
TRACE_DB = VAR / "traces" / "traces.sqlite3"
PROMETHEUS_DATA = VAR / "data" / "prometheus"
PROMETHEUS_CONF = ETC / "prometheus" / "prometheus.yml"
METRICS = RUN / "metrics"
IS_ROOT = os.geteuid() == 0


def _traversable_by_postgres(path: Path) -> bool:
    """PostgreSQL refuses to run as root; as user postgres it must reach its data dir."""
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents] if p.exists())


def pg_data_dir() -> Path:
    """The cluster's data directory: var/postgres, unless user postgres cannot reach var/.

    In that case (a checkout under a private home, say) it lives in
    /var/lib/saga-orchestration/<hash of the checkout path>/postgres.
    """
    if override := os.environ.get("PGDATA_DIR"):
        return Path(override)
    if not IS_ROOT or _traversable_by_postgres(VAR):
        return VAR / "postgres"
    digest = hashlib.sha1(str(REPO).encode()).hexdigest()[:10]
    return Path("/var/lib/saga-orchestration") / digest / "postgres"


def metrics_dir(service: str) -> Path:
    """PROMETHEUS_MULTIPROC_DIR of every process of one service."""
    return METRICS / service


def executable(name: str) -> str:
    """An executable from the virtualenv first, then PATH."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"missing executable: {name} (run deploy/bin/bootstrap)")
    return found
