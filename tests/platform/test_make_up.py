"""`make up` is idempotent: run again on a running platform it succeeds, starts nothing twice."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from deploy.local import paths, supervisor
from deploy.local.programs import all_programs


def processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process on the machine."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for line in out.splitlines():
        pid, ppid, args = line.strip().split(None, 2)
        rows.append((int(pid), int(ppid), args))
    return rows


@pytest.mark.slow
def test_make_up_twice_succeeds_and_leaves_one_copy_of_each_process() -> None:
    for _ in range(2):
        result = subprocess.run(
            ["make", "up"], cwd=paths.REPO, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "everything is up" in result.stdout

    procs = processes()
    conf = str(paths.SUPERVISOR_CONF)
    supervisords = [p for p in procs if "supervisord" in p[2] and conf in p[2]]
    assert len(supervisords) == 1
    manager = supervisords[0][0]

    # Every program runs once, as a direct child of the one supervisord...
    pids = supervisor.pids()
    programs = all_programs()
    assert all(pids[p.name] > 0 for p in programs)
    children = Counter(args for pid, ppid, args in procs if ppid == manager)
    assert sum(children.values()) == len(programs)
    assert {pid for pid, ppid, _ in procs if ppid == manager} == set(pids.values())
    # ...and nothing from an earlier run survived beside it: every process that runs
    # one of this checkout's configurations or service commands descends from it.
    managed = descendants(manager, procs)
    strays = [
        (pid, args)
        for pid, _, args in procs
        if pid not in managed and _is_platform_process(pid, args)
    ]
    assert strays == []


SERVICE_COMMANDS = ("gunicorn", "celery", "grpcserve", "outbox_relay", "kafka_consume")


def _is_platform_process(pid: int, args: str) -> bool:
    if str(paths.ETC) in args:
        return True
    try:
        cwd = Path(f"/proc/{pid}/cwd").resolve()
    except OSError:
        return False
    return cwd == paths.REPO and any(c in args for c in SERVICE_COMMANDS)


def descendants(root: int, procs: list[tuple[int, int, str]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid, _ in procs:
        children.setdefault(ppid, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
