"""Prometheus metrics shared by every process of a service (docs/observability.md).

Declare a metric once, at module level, with `counter`, `histogram` or `gauge`:

    HTTP_REQUESTS = counter("http_requests", "HTTP requests handled.", ["method", "route"])

A service runs several processes (gunicorn workers, the gRPC server, relay, consumer,
Celery). With `PROMETHEUS_MULTIPROC_DIR` set, each writes its values to its own files
in that directory and the service's `/metrics` view adds them all up
(`metrics_registry`). Without it (unit tests) values live in this process and the
default registry answers them.

The files are named after `process_identifier()`, `<hostname>-<pid>` rather than the
bare pid: in docker-compose the containers of one service share the directory, and
pids repeat across containers. Locally the hostname is the same for every process, so
the name is as unique as the pid.

The choice between the two modes is made once, when this module is first imported:
prometheus_client builds every metric value with the class chosen then, so import this
module (not prometheus_client directly) before declaring any metric.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.registry import Collector

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# From 1 ms (a cache hit, a local gRPC call) to 10 s (beyond every deadline we set).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GaugeMode = Literal[
    "all",
    "liveall",
    "min",
    "livemin",
    "max",
    "livemax",
    "sum",
    "livesum",
    "mostrecent",
    "livemostrecent",
]
"""How `/metrics` combines one gauge's values from several processes (prometheus_client's
multiprocess_mode); "live*" modes forget a process once it exits."""

MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)

# Hostname without "_": prometheus_client splits file names on it.
_HOST = socket.gethostname().replace("_", "-") or "localhost"
_identity: tuple[int, str] = (0, "")


def process_identifier(pid: int | None = None) -> str:
    """`<hostname>-<pid>` of this process (or of `pid` on this host): names its metric files.

    prometheus_client asks on every update (to notice a fork), so it answers from a
    cache unless the pid changed.
    """
    global _identity
    if pid is not None:
        return f"{_HOST}-{pid}"
    current = os.getpid()
    if _identity[0] != current:
        _identity = (current, f"{_HOST}-{current}")
    return _identity[1]


def _multiprocess_dir_at_import() -> str | None:
    path = os.environ.get(MULTIPROC_DIR_ENV) or None
    if path is not None:
        # A missing directory would fail the first metric, i.e. the import of whatever
        # module declares it: create it rather than take the process down.
        os.makedirs(path, exist_ok=True)
    return path


_MULTIPROC_DIR = _multiprocess_dir_at_import()
if _MULTIPROC_DIR is not None:
    values.ValueClass = values.MultiProcessValue(process_identifier)


def multiprocess_dir() -> str | None:
    """The shared directory of this service's processes, or None (single-process mode)."""
    return _MULTIPROC_DIR


def mark_process_dead(pid: int | None = None) -> None:
    """Forget the "live*" gauges of process `pid` on this host (default: this process).

    Gunicorn's master calls it for each worker that exits (common.gunicorn_conf);
    every other process calls it for itself at exit.
    """
    if _MULTIPROC_DIR is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(process_identifier(pid), _MULTIPROC_DIR)


if _MULTIPROC_DIR is not None:
    atexit.register(mark_process_dead)


# -- declaring -------------------------------------------------------------------------

_declared: dict[str, Counter | Gauge | Histogram] = {}
_declare_lock = threading.Lock()


def _declare(kind: type[MetricT], name: str, **kwargs: Any) -> MetricT:
    """The metric `name`, built on first use; a second declaration answers the first (a
    module imported twice, or two modules counting the same thing)."""
    with _declare_lock:
        found = _declared.get(name)
        if found is None:
            found = _declared[name] = kind(name, **kwargs)
        if not isinstance(found, kind):
            raise ValueError(f"metric {name!r} is already declared as a {type(found).__name__}")
        return found


def counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
    """A counter; `name` without the `_total` suffix prometheus_client adds."""
    return _declare(Counter, name, documentation=documentation, labelnames=tuple(labelnames))


def histogram(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    buckets: Sequence[float] = LATENCY_BUCKETS,
) -> Histogram:
    """A histogram, by default of latencies in seconds (`LATENCY_BUCKETS`)."""
    return _declare(
        Histogram,
        name,
        documentation=documentation,
        labelnames=tuple(labelnames),
        buckets=tuple(buckets),
    )


def gauge(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    multiprocess_mode: GaugeMode = "livemax",
) -> Gauge:
    """A gauge. `multiprocess_mode` says how `/metrics` combines processes: the default
    "livemax" suits a value one process owns at a time (a partition's lag) and forgets
    processes that exited; "livesum" suits per-process amounts that add up."""
    return _declare(
        Gauge,
        name,
        documentation=documentation,
        labelnames=tuple(labelnames),
        multiprocess_mode=multiprocess_mode,
    )


# -- exposing --------------------------------------------------------------------------

_scrape_collectors: list[Collector] = []
_scrape_lock = threading.Lock()


def register_scrape_collector(collector: Collector) -> None:
    """Add a collector computed when `/metrics` is scraped (one per class; later ones
    of the same class are ignored).

    Its values are not shared through the multiprocess files: it runs in the process
    that answers the scrape. It needs a `describe()` that touches nothing (the default
    registry calls it at registration).
    """
    with _scrape_lock:
        if any(type(known) is type(collector) for known in _scrape_collectors):
            return
        _scrape_collectors.append(collector)
        if _MULTIPROC_DIR is None:
            REGISTRY.register(collector)


def scrape_collectors() -> Iterable[Collector]:
    """The collectors `register_scrape_collector` added, in order."""
    with _scrape_lock:
        return tuple(_scrape_collectors)


def metrics_registry() -> CollectorRegistry:
    """What `/metrics` exposes: every process of the service plus the scrape-time
    collectors in multiprocess mode; the default registry otherwise."""
    if _MULTIPROC_DIR is None:
        return REGISTRY
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=_MULTIPROC_DIR)
    for collector in scrape_collectors():
        registry.register(collector)
    return registry
