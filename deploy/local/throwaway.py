"""A throwaway PostgreSQL and a one-node Redis Cluster for in-process tests without `make up`.

A service's in-process tests need a PostgreSQL for pytest-django's test database and a
Redis Cluster for the cache. When the platform runs, they use its own (the test
database and per-session cache names keep them apart). When it does not, the session
fixture `backing_services` starts what is missing here, in a temporary directory on a
free port, with the role and password the service's settings expect, and removes it at
the end: so `pytest <service>/tests -m "not live"` passes with the stack down.

Service conftests import the fixture (`from deploy.local.throwaway import
backing_services  # noqa: F401`); it is autouse and runs before any test touches either.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
import redis

from deploy.local import paths
from deploy.local.health import port_open
from deploy.local.postgres import as_owner, superuser

STARTUP_PATIENCE = 30.0  # seconds a throwaway server may take to answer


def free_port() -> int:
    """A TCP port nothing listens on now (the OS's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STARTUP_PATIENCE
    while not ready():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"the throwaway {what} did not answer within {STARTUP_PATIENCE}s")
        time.sleep(0.1)


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own: one login role that may create databases."""

    def __init__(self, *, role: str, password: str) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="throwaway-pg-"))
        if paths.IS_ROOT:  # PostgreSQL refuses to run as root
            shutil.chown(self.directory, "postgres", "postgres")
        self._data = self.directory / "data"
        try:
            self._start(role=role, password=password)
        except BaseException:
            self.stop()  # leave nothing behind a failed start
            raise

    def _start(self, *, role: str, password: str) -> None:
        self._run(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            superuser(),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        # Durability is worth nothing to a database thrown away at the end of the run.
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.directory / "postgres.log")
        self._run("pg_ctl", "-D", str(self._data), "-o", options, "-l", log, "-w", "start")
        superuser_connection = psycopg2.connect(
            host=str(self.directory), port=self.port, user=superuser(), dbname="postgres"
        )
        with contextlib.closing(superuser_connection) as conn:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE ROLE "{role}" LOGIN CREATEDB PASSWORD %s', [password])

    def _run(self, program: str, *args: str) -> None:
        command = as_owner([str(paths.PG_BIN / program), *args])
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stdout}{result.stderr}")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


class ThrowawayRedisCluster:
    """One redis-server in cluster mode holding every slot: a cluster client works as on
    the platform's six nodes (no failover to test here: that is the live suites' job)."""

    def __init__(self) -> None:
        self.port = free_port()
        # Its own bus port: the default (port + 10000) may lie past 65535 or be taken.
        bus_port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="throwaway-redis-"))
        self._log = self.directory / "redis.log"
        settings = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "cluster-enabled": "yes",
            "cluster-port": str(bus_port),
            "cluster-config-file": "nodes.conf",
            "dir": str(self.directory),
            "logfile": str(self._log),
            "save": "",
            "appendonly": "no",
        }
        arguments = [item for name, value in settings.items() for item in (f"--{name}", value)]
        self._process = subprocess.Popen(
            ["redis-server", *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            node = redis.Redis(host="127.0.0.1", port=self.port)
            _wait(lambda: self._answers(node), "Redis")
            node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            _wait(lambda: node.cluster("info")["cluster_state"] == "ok", "Redis Cluster")
            node.close()
        except BaseException:
            self.stop()  # leave nothing behind a failed start
            raise

    @property
    def nodes(self) -> str:
        """The startup nodes, as REDIS_CLUSTER_NODES spells them."""
        return f"127.0.0.1:{self.port}"

    def _answers(self, node: redis.Redis) -> bool:
        if self._process.poll() is not None:
            log = self._log.read_text() if self._log.exists() else ""
            raise RuntimeError(f"the throwaway redis-server exited:\n{log[-2000:]}")
        with contextlib.suppress(redis.ConnectionError):
            return bool(node.ping())
        return False

    def stop(self) -> None:
        self._process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)
        if self._process.poll() is None:
            self._process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def backing_services() -> Iterator[None]:
    """The platform's PostgreSQL and Redis Cluster when they answer, else throwaway ones
    (pointed at by this process's settings before any test connects)."""
    from django.conf import settings

    started: list[ThrowawayPostgres | ThrowawayRedisCluster] = []
    try:
        database = settings.DATABASES["default"]
        if not port_open(database["HOST"], int(database["PORT"])):
            postgres = ThrowawayPostgres(role=database["USER"], password=database["PASSWORD"])
            started.append(postgres)
            database["HOST"], database["PORT"] = "127.0.0.1", str(postgres.port)
        if not any(port_open(host, port) for host, port in _nodes(settings.REDIS_CLUSTER_NODES)):
            cluster = ThrowawayRedisCluster()
            started.append(cluster)
            settings.REDIS_CLUSTER_NODES = cluster.nodes
            settings.CACHES["default"]["LOCATION"] = cluster.nodes
        yield
    finally:
        for server in reversed(started):
            server.stop()


def _nodes(spec: str) -> list[tuple[str, int]]:
    """(host, port) of each node of REDIS_CLUSTER_NODES ("host:port,host:port")."""
    pairs = (node.strip().rpartition(":") for node in spec.split(",") if node.strip())
    return [(host, int(port)) for host, _, port in pairs]
