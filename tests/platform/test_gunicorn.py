"""Each service's gunicorn as Traefik uses it: connections pooled, some of them idle."""

from __future__ import annotations

import socket
import time

import requests

from common.topology import SERVICES

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
