"""An app's own settings, typed: one frozen dataclass per app, each default written once.

An app declares its settings in its `conf.py` and exposes one accessor, `config`:

    @dataclass(frozen=True)
    class OrderSettings:
        max_lines: int = 20  # ORDER_MAX_LINES
        cache_namespace: str = "order"  # ORDER_CACHE_NAMESPACE

    config = AppSettings(OrderSettings, prefix="ORDER_")

The service's settings module takes them from the environment with
`**config.from_environment()` (each setting from its variable, else the default), and
code reads `config().max_lines`. A field's setting is the prefix plus its name in capitals,
or the name given by `setting(default, name=...)`. A value is converted to the field's
type (a comma-separated string makes a tuple), or by `setting(default, convert=...)`.

`config()` builds the dataclass once per process and again after a setting changes
(Django's `setting_changed`, sent by `override_settings` and pytest-django's `settings`),
so tests that override a setting see it at once.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from django.conf import settings as django_settings
from django.core.signals import setting_changed

T = TypeVar("T")
V = TypeVar("V")

Convert = Callable[[Any], Any]

_NAME = "common.conf.name"
_CONVERT = "common.conf.convert"
_TRUE = ("1", "true", "yes", "on")


def setting(default: V, *, name: str | None = None, convert: Convert | None = None) -> V:
    """A field whose setting is not named after it (`name`), or whose value needs more
    than the field's type to read (`convert`, given the raw setting or variable)."""
    metadata = {_NAME: name, _CONVERT: convert}
    if isinstance(default, dict | list | set):  # dataclasses refuse a shared mutable default
        return dataclasses.field(default_factory=lambda: copy.copy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def comma_separated(value: Any) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']; any other iterable as it is."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value)


def upper_codes(value: Any) -> tuple[str, ...]:
    """Codes such as ISO 4217 currencies, in capitals: 'vnd,USD' -> ('VND', 'USD')."""
    return tuple(str(code).strip().upper() for code in comma_separated(value))


def convert_to(hint: Any, value: Any) -> Any:
    """`value` (a setting, or an environment variable's text) as type `hint`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return value.strip().lower() in _TRUE if isinstance(value, str) else bool(value)
    if hint in (int, float, str):
        return hint(value)
    if origin in (tuple, frozenset, list):
        item = args[0] if args else str
        return origin(convert_to(item, part) for part in comma_separated(value))
    if origin is dict or hint is dict:
        return dict(value)
    raise TypeError(f"no conversion to {hint!r}: give the field setting(convert=...)")


class AppSettings(Generic[T]):
    """The settings of one app, declared by the frozen dataclass `schema`."""

    def __init__(self, schema: type[T], *, prefix: str = "") -> None:
        if not dataclasses.is_dataclass(schema):
            raise TypeError(f"{schema!r} is not a dataclass")
        self.schema = schema
        hints = typing.get_type_hints(schema)
        for item in dataclasses.fields(schema):
            if item.default is item.default_factory is dataclasses.MISSING:
                raise TypeError(f"{schema.__name__}.{item.name} needs a default")
        self._fields = {
            item.metadata.get(_NAME) or f"{prefix}{item.name.upper()}": item
            for item in dataclasses.fields(schema)
        }
        self._converters: dict[str, Convert] = {
            name: item.metadata.get(_CONVERT) or _by_type(hints[item.name])
            for name, item in self._fields.items()
        }
        self._current: T | None = None
        self._lock = threading.Lock()
        setting_changed.connect(self._forget)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the settings, as the settings module and the environment spell them."""
        return tuple(self._fields)

    def __call__(self) -> T:
        """The app's settings now (built on first use, and again after a change)."""
        current = self._current
        if current is None:
            with self._lock:
                current = self._current = self._read()
        return current

    def from_environment(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Every setting of the app for the settings module: its environment variable
        (converted), else its default."""
        environ = os.environ if environ is None else environ
        values = {name: self._default(name) for name in self._fields}
        for name in self._fields.keys() & environ.keys():
            values[name] = self._converters[name](environ[name])
        return values

    def _read(self) -> T:
        """The dataclass of the settings Django has, defaults for the others."""
        given = {}
        for name, item in self._fields.items():
            value = getattr(django_settings, name, dataclasses.MISSING)
            if value is not dataclasses.MISSING:
                given[item.name] = self._converters[name](value)
        return self.schema(**given)

    def _default(self, name: str) -> Any:
        item = self._fields[name]
        if item.default_factory is not dataclasses.MISSING:
            return item.default_factory()
        return item.default

    def _forget(self, **signal: Any) -> None:
        if signal.get("setting") in self._fields:
            self._current = None


def _by_type(hint: Any) -> Convert:
    return lambda value: convert_to(hint, value)
