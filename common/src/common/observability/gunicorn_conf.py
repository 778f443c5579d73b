"""Gunicorn hooks every service's HTTP server loads: `-c python:common.observability.gunicorn_conf`.

Gunicorn takes the module-level names of its settings from here; keep other names private.
"""

from __future__ import annotations

import os
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited (called in the master): drop its "live*" gauges from the shared
    metrics directory, since a killed worker cannot run its own exit handlers."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    from prometheus_client import multiprocess

    from common.observability.metrics import process_identifier

    multiprocess.mark_process_dead(process_identifier(worker.pid), path)
