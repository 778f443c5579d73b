"""The one-shot initialisers do what the compose file relies on, against real servers
started here (PostgreSQL 15 and redis-server from the OS packages, as `make up` installs
them) or, for Kafka, a stand-in of the kafka-topics tool: each creates what is missing,
and a second run changes nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.deploy.conftest import REPO, minimal_env

SCRIPTS = REPO / "deploy" / "docker"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
IS_ROOT = os.geteuid() == 0


def free_ports(count: int) -> list[int]:
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (+10000) is free too; Redis caps them at 55535."""
    import random

    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 45000)
        if port not in ports and _bindable(port) and _bindable(port + 10000):
            ports.append(port)
    return ports


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def run_script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPTS / name)],
        capture_output=True,
        text=True,
        timeout=180,
        env=minimal_env(**env),
    )


# --- Kafka topics ----------------------------------------------------------------------

FAKE_KAFKA_TOPICS = '''\
"""A stand-in of kafka-topics.sh keeping each topic's partition count in a file."""
import pathlib, sys
args = sys.argv[1:]
state = pathlib.Path(__file__).with_name("topics")
state.mkdir(exist_ok=True)
def opt(name):
    return args[args.index(name) + 1]
assert opt("--bootstrap-server") == "kafka:9092"
topic = state / opt("--topic")
with open(state.parent / "calls", "a") as log:
    log.write(" ".join(args[2:]) + "\\n")
if "--create" in args:
    assert "--if-not-exists" in args and opt("--replication-factor") == "1"
    if not topic.exists():
        topic.write_text(opt("--partitions"))
elif "--describe" in args:
    print(f"Topic: {topic.name}\\tTopicId: x\\tPartitionCount: {topic.read_text()}\\t"
          "ReplicationFactor: 1\\tConfigs: ")
    print(f"\\tTopic: {topic.name}\\tPartition: 0\\tLeader: 1")
elif "--alter" in args:
    assert int(opt("--partitions")) > int(topic.read_text())
    topic.write_text(opt("--partitions"))
'''


def test_kafka_init_creates_missing_topics_and_grows_small_ones(
    tmp_path: Path, compose: dict[str, Any]
) -> None:
    tool = tmp_path / "kafka-topics"
    tool.write_text(f"#!{sys.executable}\n{FAKE_KAFKA_TOPICS}")
    tool.chmod(0o755)
    env = {
        **{k: str(v) for k, v in compose["services"]["kafka-init"]["environment"].items()},
        "KAFKA_TOPICS_CMD": str(tool),
    }
    topics = env["TOPICS"].split()
    (tmp_path / "topics").mkdir()
    (tmp_path / "topics" / topics[0]).write_text("2")  # an existing, smaller topic

    first = run_script("kafka-init-topics.sh", env)
    assert first.returncode == 0, first.stderr
    assert {t: (tmp_path / "topics" / t).read_text() for t in topics} == dict.fromkeys(
        topics, env["PARTITIONS"]
    )
    assert f"grew {topics[0]} from 2 to {env['PARTITIONS']}" in first.stdout

    calls_before = (tmp_path / "calls").read_text().count("--alter")
    second = run_script("kafka-init-topics.sh", {**env})
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "calls").read_text().count("--alter") == calls_before
    assert "grew" not in second.stdout


# --- Redis Cluster ---------------------------------------------------------------------


@pytest.fixture
def redis_nodes(compose: dict[str, Any], tmp_path: Path) -> Iterator[list[int]]:
    """Six redis-servers with the compose file's own cluster options, on free ports."""
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is missing: deploy/bin/bootstrap installs it")
    ports = free_cluster_ports(6)
    procs = []
    try:
        for i, port in enumerate(ports):
            args = list(compose["services"][f"redis-node-{i}"]["command"])
            data = tmp_path / f"node-{i}"
            data.mkdir()
            args[args.index("--port") + 1] = str(port)
            args[args.index("--dir") + 1] = str(data)
            procs.append(
                subprocess.Popen(
                    [*args, "--bind", "127.0.0.1"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            wait_port(port)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def test_redis_cluster_init_creates_three_masters_and_three_replicas_once(
    redis_nodes: list[int],
) -> None:
    env = {"REDIS_NODES": " ".join(f"127.0.0.1:{p}" for p in redis_nodes), "TIMEOUT": "60"}
    first = run_script("redis-cluster-init.sh", env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "cluster_state ok, 3 masters, 3 replicas" in first.stdout

    second = run_script("redis-cluster-init.sh", env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "the cluster exists" in second.stdout
    assert "creating" not in second.stdout

    # Clients are told the masters by name (which the compose network resolves), not
    # by a container address. (Replicas join CLUSTER SLOTS once their sync is done.)
    slots = subprocess.run(
        ["redis-cli", "-p", str(redis_nodes[0]), "cluster", "slots"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.split()
    names = {w for w in slots if w.startswith("redis-node-")}
    assert len(names) >= 3, slots
    assert names <= {f"redis-node-{i}" for i in range(6)}


# --- PostgreSQL ------------------------------------------------------------------------


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if IS_ROOT else cmd


@pytest.fixture
def postgres_server() -> Iterator[tuple[int, str]]:
    """A throwaway PostgreSQL 15 server: (port, superuser password)."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 is missing in {PG_BIN}: deploy/bin/bootstrap installs it")
    root = Path(tempfile.mkdtemp(prefix="saga-pg-init-"))
    root.chmod(0o755)  # the server runs as user postgres when we are root
    data, sock = root / "data", root / "sock"
    data.mkdir()
    sock.mkdir()
    if IS_ROOT:
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
    password = "superuser-test-password"
    (port,) = free_ports(1)
    proc = None
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        proc = subprocess.Popen(
            _as_postgres(
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-k",
                    str(sock),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                ]
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(port)
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "psql"),
                    "-h",
                    str(sock),
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    "-c",
                    f"ALTER ROLE postgres PASSWORD '{password}'",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield port, password
    finally:
        if proc is not None:
            proc.terminate()  # smart shutdown; the test's connections are closed
            proc.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _connect(port: int, user: str, password: str, dbname: str) -> Any:
    return psycopg2.connect(
        host="127.0.0.1", port=port, user=user, password=password, dbname=dbname, connect_timeout=5
    )


def test_postgres_init_creates_each_role_and_database_idempotently(
    postgres_server: tuple[int, str], compose: dict[str, Any]
) -> None:
    port, superuser_password = postgres_server
    env = {k: str(v) for k, v in compose["services"]["postgres-init"]["environment"].items()}
    env.update(PGHOST="127.0.0.1", PGPORT=str(port), PGPASSWORD=superuser_password)
    entries = [e.split(":") for e in env["SAGA_DATABASES"].split()]

    first = run_script("postgres-init.sh", env)
    assert first.returncode == 0, first.stderr
    for db, role, password_var in entries:
        with _connect(port, role, env[password_var], db) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_user, current_database()")
            assert cur.fetchone() == (role, db)
        conn.close()

    # No role may open another service's database.
    (db_a, role_a, pw_a), (db_b, _, _) = entries[0], entries[1]
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        _connect(port, role_a, env[pw_a], db_b)

    # A second run with a changed password keeps everything and applies the password.
    env[pw_a] = "rotated-password"
    second = run_script("postgres-init.sh", env)
    assert second.returncode == 0, second.stderr
    conn = _connect(port, role_a, "rotated-password", db_a)
    conn.close()


def test_postgres_init_refuses_an_empty_password(compose: dict[str, Any]) -> None:
    env = {k: str(v) for k, v in compose["services"]["postgres-init"]["environment"].items()}
    env["ORDER_DB_PASSWORD"] = ""
    env["PGHOST"] = "127.0.0.1"
    env["PGPORT"] = str(free_ports(1)[0])  # never reached: the check comes first
    env["SAGA_DATABASES"] = "order_db:order_svc:ORDER_DB_PASSWORD"
    result = run_script("postgres-init.sh", env)
    assert result.returncode != 0
    assert "ORDER_DB_PASSWORD is empty" in result.stderr
