"""`python -m deploy.traceview`: run the trace collector and viewer until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from common.topology import INFRA
from deploy.local import paths
from deploy.traceview.server import TraceServers
from deploy.traceview.store import DEFAULT_RETENTION_SPANS, TraceStore


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.traceview", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--otlp-port", type=int, default=INFRA.otlp_http_port)
    parser.add_argument("--viewer-port", type=int, default=INFRA.trace_viewer_port)
    parser.add_argument("--db", type=Path, default=paths.TRACE_DB)
    parser.add_argument(
        "--retention-spans",
        type=int,
        default=int(os.environ.get("TRACE_RETENTION_SPANS", DEFAULT_RETENTION_SPANS)),
        help="keep at most this many spans; the oldest traces go first (TRACE_RETENTION_SPANS)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    store = TraceStore(args.db, retention_spans=args.retention_spans)
    servers = TraceServers(store, args.host, args.otlp_port, args.viewer_port).start()
    logging.info(
        "collecting OTLP/HTTP on http://%s:%d/v1/traces, viewer on http://%s:%d/ (%s, %d spans)",
        args.host,
        servers.otlp_port,
        args.host,
        servers.viewer_port,
        args.db,
        store.span_count(),
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    servers.close()
    logging.info("stopped")


if __name__ == "__main__":
    main()
