"""Starts Traefik so that no client meets it before its routes are loaded.

    python -m deploy.local.edge_gate <traefik> --configFile=<traefik.yml>

Traefik opens its entrypoints first and loads its providers' routes after: for the
first 0.1 s or so of every start (longer on a busy machine) a request for a known
route answers Traefik's "404 page not found", which no client retries. Traefik has no
switch to wait, so the gate makes the listening socket of every entrypoint and hands
them to Traefik by socket activation (LISTEN_FDS, which Traefik reads by entrypoint
name). Until the routes are in place, the sockets of the entrypoints clients route
through (render.GATED_ENTRYPOINTS) carry a kernel filter that drops the connection
attempts of everyone but the gate's own probe: a client is neither refused nor told
404, its kernel simply sends its SYN again (after 1 s) and it lands once the gate opens.

The probe asks each gated entrypoint for its readiness router (render.EDGE_READY_HOST,
a route of dynamic.yml that Traefik's ping answers): a 200 means Traefik has switched
the entrypoint to the routes of dynamic.yml, and the gate removes the filter. The gate
runs in a short-lived grandchild; this process becomes Traefik itself (exec), so the
pid, signals and exit code supervisord sees are Traefik's. Linux only (socket
filters); elsewhere Traefik starts ungated.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import http.client
import os
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import yaml

from deploy.local.render import EDGE_READY_HOST, GATED_ENTRYPOINTS

# <asm-generic/socket.h>: not exported by the socket module.
_SO_ATTACH_FILTER = 26
_SO_DETACH_FILTER = 27
# Classic BPF opcodes: load a half-word at an absolute offset, jump if equal, return.
_LDH_ABS, _JEQ_K, _RET_K = 0x28, 0x15, 0x06
# systemd's socket activation: passed sockets start at this descriptor.
_LISTEN_FDS_START = 3

# Open anyway when the routes have not loaded by then: a broken dynamic.yml must not
# keep the edge shut (Traefik's log says why its routes are missing).
OPEN_WITHIN = 60.0
_PROBE_TIMEOUT = 5.0
_PROBE_PAUSE = 0.02
# A Traefik that is still stopping may hold the port for its grace time (10 s).
_BIND_WITHIN = 15.0

# No TCP segment comes from source port 0: a filter admitting it admits nobody.
_NOBODY = 0


def admit_only(listener: socket.socket, port: int) -> None:
    """Attach (or replace) a socket filter that keeps the TCP segments coming from
    source `port` and drops the rest.

    On a listening socket the kernel runs it on each incoming SYN and handshake ACK,
    with the TCP header first (offset 0: the source port). A dropped SYN is neither
    answered nor refused: the client's kernel sends it again a second later."""
    program = [
        (_LDH_ABS, 0, 0, 0),
        (_JEQ_K, 0, 1, port),
        (_RET_K, 0, 0, 0xFFFFFFFF),  # keep the whole segment
        (_RET_K, 0, 0, 0),  # drop it
    ]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(code))  # struct sock_fprog
    listener.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def admit_all(listener: socket.socket) -> None:
    listener.setsockopt(socket.SOL_SOCKET, _SO_DETACH_FILTER, 0)


@dataclass(frozen=True)
class Entrypoint:
    """An entrypoint of Traefik's static configuration: its name and address."""

    name: str
    host: str
    port: int

    @property
    def gated(self) -> bool:
        return self.name in GATED_ENTRYPOINTS

    @property
    def probe_host(self) -> str:
        return self.host if self.host not in ("", "0.0.0.0") else "127.0.0.1"


def entrypoints_of(config_file: Path) -> list[Entrypoint]:
    """The entrypoints of Traefik's static configuration, as Traefik reads it (IPv4)."""
    found = []
    for name, spec in yaml.safe_load(config_file.read_text())["entryPoints"].items():
        host, _, port = spec["address"].rpartition(":")
        if ":" not in host:
            found.append(Entrypoint(name, host, int(port)))
    return found


class Listener:
    """The listening socket of one entrypoint, made here and handed to Traefik; a gated
    one is shut to every client until `open()`."""

    def __init__(self, entrypoint: Entrypoint) -> None:
        self.entrypoint = entrypoint
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if entrypoint.gated:
            admit_only(self.sock, _NOBODY)  # before listen(): no connection slips in
        deadline = time.monotonic() + _BIND_WITHIN
        while True:
            try:
                self.sock.bind((entrypoint.host, entrypoint.port))
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.listen(socket.SOMAXCONN)

    def ready(self, traefik_pid: int) -> bool:
        """Ask the entrypoint for its readiness router until it answers (True) or
        Traefik is gone or the time is up (False)."""
        deadline = time.monotonic() + OPEN_WITHIN
        while time.monotonic() < deadline and _alive(traefik_pid):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            admit_only(self.sock, probe.getsockname()[1])  # this attempt's source port
            if _answers_ready(probe, self.entrypoint):
                return True
            time.sleep(_PROBE_PAUSE)
        return False

    def open(self) -> None:
        admit_all(self.sock)


def _answers_ready(probe: socket.socket, entrypoint: Entrypoint) -> bool:
    """One readiness request on `probe`: 200 once the routes are in, Traefik's default
    404 before. A connection Traefik has not accepted yet waits in the backlog."""
    address = (entrypoint.probe_host, entrypoint.port)
    probe.settimeout(_PROBE_TIMEOUT)
    conn = http.client.HTTPConnection(*address, timeout=_PROBE_TIMEOUT)
    try:
        probe.connect(address)
        conn.sock = probe
        conn.request("GET", "/", headers={"Host": EDGE_READY_HOST, "Connection": "close"})
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()
        probe.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _guard(gated: list[Listener], traefik_pid: int) -> None:
    """The gate's own process: probe each gated entrypoint, then let clients in."""
    started = time.monotonic()
    for listener in gated:
        if not listener.ready(traefik_pid):
            if not _alive(traefik_pid):
                return  # its sockets close with this process and Traefik's
            print(
                f"edge gate: the routes of {listener.entrypoint.name} did not answer within"
                f" {OPEN_WITHIN:.0f} s; opening it anyway",
                flush=True,
            )
        listener.open()
    names = ", ".join(g.entrypoint.name for g in gated)
    print(f"edge gate: {names} open {time.monotonic() - started:.2f} s after start", flush=True)


def _start_guard(gated: list[Listener]) -> None:
    """Run `_guard` in a grandchild, which init reaps (the exec'd Traefik would not).
    Should the guard fail, it opens the gates: a shut edge is worse than a 404."""
    traefik_pid = os.getpid()
    child = os.fork()
    if child == 0:
        try:
            if os.fork() == 0:
                try:
                    _guard(gated, traefik_pid)
                except BaseException:
                    traceback.print_exc()
                    for listener in gated:
                        with contextlib.suppress(OSError):
                            listener.open()
                    sys.stdout.flush()
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def _hand_over(listeners: list[Listener]) -> dict[str, str]:
    """Put the sockets on descriptors 3, 4, ... for Traefik; answer the environment
    that names them (systemd's socket activation protocol, by entrypoint name)."""
    first_free = _LISTEN_FDS_START + len(listeners)
    moved = [fcntl.fcntl(lst.sock.fileno(), fcntl.F_DUPFD, first_free) for lst in listeners]
    for offset, fd in enumerate(moved):
        os.dup2(fd, _LISTEN_FDS_START + offset)
        os.set_inheritable(_LISTEN_FDS_START + offset, True)
        os.close(fd)
    return {
        "LISTEN_FDS": str(len(listeners)),
        "LISTEN_FDNAMES": ":".join(lst.entrypoint.name for lst in listeners),
        "LISTEN_PID": str(os.getpid()),
    }


def main(argv: list[str]) -> None:
    command = argv[1:]
    if not command:
        raise SystemExit("usage: python -m deploy.local.edge_gate <traefik> --configFile=<file>")
    config = next((a.split("=", 1)[1] for a in command if a.startswith("--configFile=")), None)
    entrypoints = entrypoints_of(Path(config)) if config else []
    if not sys.platform.startswith("linux") or not any(e.gated for e in entrypoints):
        os.execv(command[0], command)
    listeners = [Listener(entrypoint) for entrypoint in entrypoints]
    _start_guard([lst for lst in listeners if lst.entrypoint.gated])
    os.execve(command[0], command, {**os.environ, **_hand_over(listeners)})


if __name__ == "__main__":
    main(sys.argv)
