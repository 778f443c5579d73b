"""Gunicorn hooks every service's HTTP server loads: `-c python:common.gunicorn_conf`.

Gunicorn takes the module-level names of its settings from here; keep other names private.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from typing import Any

from gunicorn import util as _util
from gunicorn.workers import gthread as _gthread

# Gunicorn drains at most this much of a body the application did not read before it
# reuses the connection (gunicorn.http.parser._DRAIN_MAX_BYTES); past it, it closes.
_DRAIN_MAX_BYTES = 64 * 1024

# Since gunicorn 24 a gthread worker hands each new connection to a pool thread, which
# waits up to this long (5 s) for the request before giving the connection back to the
# poller. Traefik keeps a pool of connections to us and dials spares under load that
# carry no request yet: during a burst a few of them held every thread of a worker for
# 5 s, and the requests queued behind them (a 5 s stall, gunicorn PR #3519). A request
# from Traefik is on the wire when its connection opens; a connection with nothing to
# read is parked in the poller at once, which is what gunicorn did before 24.
_gthread.DEFAULT_WORKER_DATA_TIMEOUT = 0.05


def pre_request(worker: Any, req: Any) -> None:
    """A body larger than gunicorn will drain is answered with `Connection: close`.

    Such a body is often refused unread (413), and gunicorn then closes the connection
    after an answer that promised keep-alive; Traefik, which pools its connections to
    us, could send the next request down that closing connection and answer 502.
    """
    length = next((v for name, v in req.headers if name == "CONTENT-LENGTH"), None)
    chunked = any(name == "TRANSFER-ENCODING" for name, _ in req.headers)
    if chunked or (length is not None and length.isdigit() and int(length) > _DRAIN_MAX_BYTES):
        req.must_close = True


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own refusals in the one JSON error shape, in place of its HTML page:
    a request line over `limit_request_line` (414), a header over
    `limit_request_field_size` or too many headers (431), a malformed request (400).
    Django never sees these requests, so no other layer could shape the answer (and the
    edge cannot either: it would ask the same gunicorn, with the same headers)."""
    from common.errors import refusal_for_status  # the worker has loaded Django by now

    body = json.dumps(refusal_for_status(status_int).as_body()).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    _util.write_nonblock(sock, head.encode("latin-1") + body)


# Workers call util.write_error by module attribute (gunicorn.workers.base.handle_error).
_util.write_error = _write_json_error


# prctl(2) option: the signal the kernel sends a process when its parent dies.
_PR_SET_PDEATHSIG = 1


def post_fork(server: Any, worker: Any) -> None:
    """A worker dies with its master (Linux): a SIGKILLed master must not leave workers
    holding the port, or the master supervisord starts next cannot bind it ("Address
    already in use") until they notice, and nothing answers meanwhile. SIGQUIT is the
    worker's quick exit: it leaves at once, closing the listening socket."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)
    if os.getppid() != server.pid:  # the master died before the line above
        os.kill(os.getpid(), signal.SIGQUIT)


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited (called in the master): drop its "live*" gauges from the shared
    metrics directory, since a killed worker cannot run its own exit handlers."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    from prometheus_client import multiprocess

    from common.observability.metrics import process_identifier

    multiprocess.mark_process_dead(process_identifier(worker.pid), path)
