"""CACHES["default"]: django-redis on the cluster, prefixed per service, JSON, and silent
about outages. Django settings can be configured once per process, so each case runs in
a fresh interpreter (the rest of this suite runs without Django settings)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from redis.cluster import RedisCluster

from common.settings import REPO_ROOT

pytestmark = pytest.mark.live

SETUP = """
import json
import django
from django.conf import settings
from common.cache.config import cache_settings
settings.configure(**cache_settings(PREFIX), SERVICE_NAME=PREFIX)
django.setup()
from django.core.cache import cache
out = {}
"""


def run_django(prefix: str, body: str) -> dict:
    code = f"PREFIX = {prefix!r}\n{SETUP}\n{textwrap.dedent(body)}\nprint(json.dumps(out))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_default_cache_stores_json_under_the_service_prefix_across_all_masters(
    prefix: str, cluster: RedisCluster
) -> None:
    out = run_django(
        prefix,
        """
        cache.set("product:1", {"id": 1, "name": "lamp"})
        cache.set_many({f"k{i}": i for i in range(50)})
        out["get"] = cache.get("product:1")
        out["many"] = cache.get_many([f"k{i}" for i in range(50)] + ["nope"])
        out["incr"] = cache.incr("k7")
        out["or_set"] = cache.get_or_set("fresh", lambda: [1, 2])
        cache.delete_many(["k0", "k1"])
        out["after_delete"] = cache.get_many(["k0", "k1", "k2"])
        """,
    )

    assert out["get"] == {"id": 1, "name": "lamp"}
    assert out["many"] == {f"k{i}": i for i in range(50)}
    assert (out["incr"], out["or_set"]) == (8, [1, 2])
    assert out["after_delete"] == {"k2": 2}
    stored = cluster.get(f"{prefix}:1:product:1")
    assert stored is not None and json.loads(stored) == {"id": 1, "name": "lamp"}
    masters = {cluster.get_node_from_key(f"{prefix}:1:k{i}").name for i in range(50)}
    assert len(masters) == 3  # keys spread over the whole cluster


def test_clear_removes_this_services_keys_only(prefix: str, cluster: RedisCluster) -> None:
    neighbour = f"{prefix}-neighbour:1:kept"
    cluster.set(neighbour, b"1", ex=60)
    try:
        out = run_django(
            prefix,
            """
            cache.set_many({f"k{i}": i for i in range(20)})
            cache.clear()
            out["left"] = cache.get_many([f"k{i}" for i in range(20)])
            """,
        )
        assert out["left"] == {}
        assert cluster.get(neighbour) == b"1"
    finally:
        cluster.delete(neighbour)


def test_an_unreachable_cluster_is_a_miss_and_a_skipped_write_never_an_error(
    prefix: str,
) -> None:
    out = run_django(
        prefix,
        """
        import logging, redis
        from common.cache import backend

        class Unreachable:
            def __getattr__(self, name):
                def fail(*args, **kwargs):
                    raise redis.ConnectionError("Connection refused")
                return fail

        backend.cache_client = lambda: Unreachable()
        records = []
        logging.getLogger("common.cache").addHandler(
            type("H", (logging.Handler,), {"emit": lambda self, r: records.append(r)})()
        )
        out["get"] = cache.get("a", "default")
        out["set"] = cache.set("a", 1)
        out["add"] = cache.add("a", 1)
        out["many"] = cache.get_many(["a", "b"])
        out["set_many"] = cache.set_many({"a": 1})
        out["delete"] = cache.delete("a")
        out["has_key"] = cache.has_key("a")
        out["or_set"] = cache.get_or_set("a", 5)
        try:
            cache.incr("a")
        except ValueError:
            out["incr"] = "ValueError"
        cache.delete_many(["a"])
        cache.clear()
        out["warnings"] = sum(r.levelname == "WARNING" for r in records)
        """,
    )

    assert out["get"] == "default" and out["or_set"] == 5
    assert (out["set"], out["add"], out["delete"], out["has_key"]) == (False,) * 4
    assert (out["many"], out["set_many"], out["incr"]) == ({}, ["a"], "ValueError")
    assert 1 <= out["warnings"] <= 11  # one per kind of operation at most
