"""supervisord: the one process manager of the local platform.

Driven through its XML-RPC interface on a unix socket: starting a program does not
wait for it (our own health waits do), so forty processes start in parallel.
"""

from __future__ import annotations

import subprocess
import time
import xmlrpc.client
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from deploy.local import paths
from deploy.local.console import fail, step


def _rpc() -> Any:
    transport = SupervisorTransport(None, None, f"unix://{paths.RUN / 'supervisor.sock'}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


def running() -> bool:
    try:
        return _rpc().getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Fault):
        return False


def ensure_running() -> None:
    """Start supervisord once; on later runs load the re-rendered configuration."""
    if running():
        added, changed, removed = _rpc().reloadConfig()[0]
        for name in removed:
            _rpc().stopProcessGroup(name, True)
            _rpc().removeProcessGroup(name)
        for name in changed:
            _rpc().stopProcessGroup(name, True)
            _rpc().removeProcessGroup(name)
            _rpc().addProcessGroup(name)
        for name in added:
            _rpc().addProcessGroup(name)
        if added or changed or removed:
            step(f"supervisord: configuration reloaded (changed groups: {changed + added})")
        return
    step(f"starting supervisord (logs in {paths.LOG})")
    result = subprocess.run(
        [paths.executable("supervisord"), "-c", str(paths.SUPERVISOR_CONF)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise fail(f"supervisord did not start: {result.stdout}{result.stderr}")
    deadline = time.monotonic() + 15
    while not running():
        if time.monotonic() > deadline:
            raise fail(f"supervisord did not start; see {paths.LOG / 'supervisord.log'}")
        time.sleep(0.2)


def status() -> dict[str, str]:
    """program name -> state (RUNNING, STARTING, BACKOFF, FATAL, STOPPED, ...)."""
    if not running():
        return {}
    return {info["name"]: info["statename"] for info in _rpc().getAllProcessInfo()}


def pids() -> dict[str, int]:
    return {info["name"]: info["pid"] for info in _rpc().getAllProcessInfo()}


def start(names: list[str]) -> None:
    """Ask supervisord to start each program that is not already up, without waiting."""
    groups, states = _groups(), status()
    for name in names:
        if states.get(name) in ("RUNNING", "STARTING"):
            continue
        try:
            _rpc().startProcess(f"{groups[name]}:{name}", False)
        except xmlrpc.client.Fault as exc:
            if "ALREADY_STARTED" not in exc.faultString:
                step(f"  {name}: {exc.faultString}")


def _groups() -> dict[str, str]:
    return {info["name"]: info["group"] for info in _rpc().getAllProcessInfo()}


def restart_if_running(names: list[str]) -> None:
    """Stop programs whose configuration file changed; `start` brings them back."""
    states, groups = status(), _groups()
    for name in names:
        if states.get(name) == "RUNNING":
            step(f"restarting {name}: its configuration changed")
            _rpc().stopProcess(f"{groups[name]}:{name}", True)


def stop(names: list[str], timeout: float = 60.0) -> None:
    """Stop the programs all at once and wait until they are down."""
    groups = _groups()
    for name in names:
        if status().get(name) in ("RUNNING", "STARTING", "BACKOFF"):
            _rpc().stopProcess(f"{groups[name]}:{name}", False)
    deadline = time.monotonic() + timeout
    while any(status().get(n) in ("RUNNING", "STARTING", "STOPPING") for n in names):
        if time.monotonic() > deadline:
            raise fail(f"processes did not stop within {timeout}s")
        time.sleep(0.2)


def shutdown() -> None:
    if not running():
        step("the platform is not running")
        return
    step("stopping every process (data is kept)")
    # Apps first: their last spans go to the collector, which stops after them.
    for group in ("apps", "observability", "infra"):
        try:
            _rpc().stopProcessGroup(group, True)
        except xmlrpc.client.Fault as exc:
            if "BAD_NAME" not in exc.faultString:  # a group that is not configured
                raise
    _rpc().shutdown()
    deadline = time.monotonic() + 60
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    step("stopped")
