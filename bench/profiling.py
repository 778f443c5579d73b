"""Sampling profile of one platform process (and its children) during a run, by py-spy.

`--profile LABEL` names a process as the CPU table does (e.g. `orchestrator-worker`,
`purchase-http`); `--profile auto` picks the hottest service process a few seconds into
the load. py-spy samples with `--idle`, so the profile shows where the wall time of
the process goes (waiting on gRPC or on the database included), not only its CPU.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import procstat

NOT_PYTHON = ("postgres", "redis", "kafka", "traefik", "bench", "pytest", "supervisord")
# Frames worth naming in the inclusive list: the project's own code, and the calls that
# leave the process (gRPC, the database, Kafka, Redis); framework loops say nothing.
OWN_CODE = re.compile(r"\((\w+_svc|common|src/common)/")
# Leaf frames of a thread or process that waits for work (not for an answer): a pool
# thread or child with nothing to do, an event loop or a LISTEN loop between events.
IDLE = re.compile(
    r"^(_worker \(concurrent/futures/thread\.py\)|\w*\.?select \(selectors\.py\)"
    r"|_epoll\.poll |Connection\._recv \(billiard|Arbiter\.(wait_for_signals|sleep) "
    r"|(Condition|Event)\.wait \(threading\.py\)|PurchaseEventHub\._listen )"
)
BOUNDARIES = re.compile(r"\((grpc|psycopg2|django/db|confluent_kafka|redis|kombu)/")


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def root_pid(label: str) -> int | None:
    """The process of `label` whose parent is not of `label` (gunicorn's or Celery's
    master: py-spy follows its children)."""
    pids = {pid for pid, (name, _) in procstat.snapshot().items() if name == label}
    for pid in sorted(pids):
        try:
            if _parent(pid) not in pids:
                return pid
        except OSError:
            continue
    return None


def hottest(seconds: float = 3.0) -> str | None:
    """The service process label with the most CPU over the next `seconds`."""
    before = procstat.snapshot()
    time.sleep(seconds)
    for sample in procstat.cpu_between(before, procstat.snapshot()):
        if "-" in sample.label and not sample.label.startswith(NOT_PYTHON):
            return sample.label
    return None


class Recording:
    def __init__(self, label: str, pid: int, path: Path) -> None:
        self.label, self.pid, self.path = label, pid, path
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        self._process = subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--subprocesses", "--idle", "--rate", "50"]
            + ["--format", "raw", "--output", str(path), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> str:
        """Stop sampling; answer py-spy's complaint if it wrote nothing."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            _, err = self._process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            _, err = self._process.communicate()
        return "" if self.path.exists() else (err or "no output").strip()[-500:]


def _frame(frame: str) -> str:
    """`function (module/path.py:123)` -> `function (module/path.py)`."""
    frame = re.sub(r":\d+\)$", ")", frame)
    return re.sub(r"\(/[^)]*?/site-packages/", "(", frame.replace(os.getcwd() + "/", ""))


def summarize(path: Path, top: int = 12) -> dict[str, Any]:
    """Where the sampled wall time went. Samples whose leaf waits for work (IDLE) are
    counted as `idle_percent` and left out; the rest ("busy": computing, or waiting for
    an answer from gRPC or the database) is split per leaf frame (`self`) and per frame
    anywhere in the stack (`inclusive`, the project's code and its outbound calls only),
    in percent of the busy samples, most first."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        if IDLE.search(frames[-1]):
            idle += n
            continue
        busy += n
        own[frames[-1]] += n
        for frame in set(frames[1:]):  # the first frame is the process/thread name
            anywhere[frame] += n
    total = busy + idle
    return {
        "samples": total,
        "idle_percent": round(100 * idle / total, 1) if total else 0.0,
        "self": [(f, round(100 * n / busy, 1)) for f, n in own.most_common(top)],
        "inclusive": [
            (f, round(100 * n / busy, 1))
            for f, n in anywhere.most_common()
            if OWN_CODE.search(f) or BOUNDARIES.search(f)
        ][: top * 2],
    }
