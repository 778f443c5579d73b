"""Each service's gunicorn as Traefik uses it: connections pooled, some of them idle."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import requests

from common.topology import SERVICES
from deploy.local import supervisor

# Three idle connections for every thread of the two workers (GUNICORN_THREADS, 8).
IDLE_CONNECTIONS = 48


def test_idle_connections_do_not_hold_the_threads_a_request_needs() -> None:
    # Given connections to purchase-http that send nothing (as the spares Traefik
    # dials under load: they may carry a request later, or never)
    port = SERVICES["purchase"].http_port
    idle = [
        socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(IDLE_CONNECTIONS)
    ]
    try:
        time.sleep(0.2)  # every worker has taken them in

        # when a request comes on a new connection
        started = time.monotonic()
        response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        waited = time.monotonic() - started

        # then it is answered at once, not after the idle ones time out (5 s each)
        assert response.status_code == 200, response.text
        assert waited < 2.0, f"a request waited {waited:.1f} s behind idle connections"
    finally:
        for conn in idle:
            conn.close()


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie has exited


def test_a_killed_master_takes_its_workers_along_and_a_new_one_serves() -> None:
    # Given a service's gunicorn master and its workers (the orchestrator's: no other
    # test leans on its HTTP API)
    program = "orchestrator-http"
    master = supervisor.pids()[program]
    workers = _children(master)
    assert workers, "gunicorn has no workers"

    # when the master is SIGKILLed
    os.kill(master, signal.SIGKILL)

    # then its workers exit at once instead of holding the port
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)], "workers outlived their master"
    # and the master supervisord starts next binds the port and serves
    port = SERVICES["orchestrator"].http_port
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                break
        time.sleep(0.2)
    else:
        raise AssertionError(f"{program} does not serve again after its master was killed")
    assert supervisor.pids()[program] != master
