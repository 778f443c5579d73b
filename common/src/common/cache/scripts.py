"""Lua scripts run with EVALSHA, falling back to EVAL when a node does not know them yet.

EVAL also caches the script on the node that ran it, so the fallback happens once per
node (and again after a restart or a failover to a replica that never saw it).
Scripts live beside this module as `lua/*.lua`; a script may be composed of several
files (a shared prelude of functions and a body).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError


class LuaScript:
    """One script; call it with a client, its keys (one hash slot) and its arguments."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    @classmethod
    def from_files(cls, *names: str) -> LuaScript:
        folder = resources.files("common.cache").joinpath("lua")
        return cls("\n".join(folder.joinpath(name).read_text() for name in names))

    def __call__(
        self, client: RedisCluster, keys: Sequence[str], args: Sequence[str | int | float | bytes]
    ) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)
