"""common.observability.metrics: declaring once, the process identity, and one `/metrics`
for all the processes of a service (PROMETHEUS_MULTIPROC_DIR).

The multiprocess cases run fresh interpreters: the mode is chosen when the module is
first imported, and this test process runs in single-process mode.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from common import gunicorn_conf
from common.observability import metrics
from common.testing import run_python

WRITER = """
import os, sys
from common.observability.metrics import counter, gauge, histogram
jobs = counter("jobs", "Jobs done.", ["kind"])
jobs.labels("a").inc(int(sys.argv[1]))
histogram("job_seconds", "Seconds per job.").observe(0.2)
gauge("busy", "Busy workers.", multiprocess_mode="livesum").set(1)
gauge("depth", "Queue depth.", multiprocess_mode="max").set(int(sys.argv[1]))
print(os.getpid(), flush=True)
if sys.argv[2] == "killed":
    os._exit(0)  # no exit handlers, as a killed worker
"""

READER = """
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from common.observability.metrics import metrics_registry, register_scrape_collector

class Backlog:
    def describe(self):
        return [GaugeMetricFamily("backlog", "Rows waiting.")]
    def collect(self):
        return [GaugeMetricFamily("backlog", "Rows waiting.", value=7)]

register_scrape_collector(Backlog())
print(generate_latest(metrics_registry()).decode())
"""


def run(code: str, *args: str, multiproc_dir: Path) -> str:
    return run_python(
        code, *args, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    )


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def test_one_scrape_adds_up_every_process_of_the_service(tmp_path: Path) -> None:
    first = int(run(WRITER, "2", "exited", multiproc_dir=tmp_path))
    second = int(run(WRITER, "3", "killed", multiproc_dir=tmp_path))

    seen = samples(run(READER, multiproc_dir=tmp_path))

    assert seen[("jobs_total", (("kind", "a"),))] == 5
    assert seen[("job_seconds_count", ())] == 2
    assert seen[("job_seconds_bucket", (("le", "0.25"),))] == 2
    assert seen[("depth", ())] == 3  # max over processes, exited ones included
    assert seen[("busy", ())] == 1  # live only: the one that exited cleanly is gone
    assert seen[("backlog", ())] == 7  # the scrape-time collector, in the scraping process
    host = socket.gethostname()
    assert (tmp_path / f"counter_{host}-{first}.db").exists()
    assert (tmp_path / f"counter_{host}-{second}.db").exists()

    # gunicorn's master reports the killed worker: its live gauges go too
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    try:
        gunicorn_conf.child_exit(None, SimpleNamespace(pid=second))
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    seen = samples(run(READER, multiproc_dir=tmp_path))
    assert ("busy", ()) not in seen
    assert seen[("jobs_total", (("kind", "a"),))] == 5  # counters keep what they counted


def test_child_exit_without_the_shared_directory_does_nothing() -> None:
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    gunicorn_conf.child_exit(None, SimpleNamespace(pid=12345))


def test_the_process_identifier_is_hostname_and_pid() -> None:
    host = socket.gethostname()
    assert metrics.process_identifier() == f"{host}-{os.getpid()}"
    assert metrics.process_identifier(42) == f"{host}-42"


def test_single_process_mode_answers_the_default_registry() -> None:
    assert metrics.multiprocess_dir() is None
    assert metrics.metrics_registry() is REGISTRY


def test_a_metric_declared_twice_is_the_same_metric() -> None:
    first = metrics.counter("test_declared_twice", "Declared twice.", ["x"])
    second = metrics.counter("test_declared_twice", "Declared twice.", ["x"])
    assert first is second
    assert isinstance(first, Counter)
    with pytest.raises(ValueError, match="already declared"):
        metrics.gauge("test_declared_twice", "Now a gauge.")


class _Rows:
    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily("test_scrape_rows", "Rows.")]

    def collect(self) -> Iterable[Metric]:
        return [GaugeMetricFamily("test_scrape_rows", "Rows.", value=3)]


def test_scrape_collectors_join_the_default_registry_once() -> None:
    metrics.register_scrape_collector(_Rows())
    metrics.register_scrape_collector(_Rows())  # a second of the same kind is ignored

    text = generate_latest(metrics.metrics_registry()).decode()

    assert samples(text)[("test_scrape_rows", ())] == 3
