"""common.conf: an app's settings as one typed dataclass, each default declared once.

Reading the environment and converting values need no Django settings; reading Django's
settings does, and they can be configured once per process, so those cases run in a
fresh interpreter (the rest of this suite runs without Django settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from common.conf import AppSettings, convert_to, setting, upper_codes
from common.testing import run_python_json


def _hours(value: Any) -> float:
    return float(value) * 3600


@dataclass(frozen=True)
class ShopSettings:
    max_lines: int = 20
    timeout_seconds: float = 2.0
    namespace: str = "shop"
    secure: bool = False
    currencies: tuple[str, ...] = setting(("VND", "USD"), name="CURRENCIES", convert=upper_codes)
    windows: dict[str, float] = setting({})
    retention: float = setting(1.0, convert=_hours)


SHOP = AppSettings(ShopSettings, prefix="SHOP_")


def test_each_field_is_a_setting_named_by_the_prefix_or_by_its_own_name() -> None:
    assert SHOP.names == (
        "SHOP_MAX_LINES",
        "SHOP_TIMEOUT_SECONDS",
        "SHOP_NAMESPACE",
        "SHOP_SECURE",
        "CURRENCIES",
        "SHOP_WINDOWS",
        "SHOP_RETENTION",
    )


def test_without_environment_variables_the_settings_module_gets_the_defaults() -> None:
    assert SHOP.from_environment({}) == {
        "SHOP_MAX_LINES": 20,
        "SHOP_TIMEOUT_SECONDS": 2.0,
        "SHOP_NAMESPACE": "shop",
        "SHOP_SECURE": False,
        "CURRENCIES": ("VND", "USD"),
        "SHOP_WINDOWS": {},
        "SHOP_RETENTION": 1.0,
    }


def test_a_mutable_default_is_not_shared_between_readers() -> None:
    first, second = SHOP.from_environment({}), SHOP.from_environment({})
    first["SHOP_WINDOWS"]["x"] = 1.0
    assert second["SHOP_WINDOWS"] == {}


def test_environment_variables_are_converted_to_the_fields_types() -> None:
    environ = {
        "SHOP_MAX_LINES": "5",
        "SHOP_TIMEOUT_SECONDS": "0.5",
        "SHOP_NAMESPACE": "shop-test",
        "SHOP_SECURE": "yes",
        "CURRENCIES": "eur, jpy,,",
        "SHOP_RETENTION": "2",
        "UNRELATED": "ignored",
    }
    values = SHOP.from_environment(environ)
    assert values["SHOP_MAX_LINES"] == 5
    assert values["SHOP_TIMEOUT_SECONDS"] == 0.5
    assert values["SHOP_NAMESPACE"] == "shop-test"
    assert values["SHOP_SECURE"] is True
    assert values["CURRENCIES"] == ("EUR", "JPY")
    assert values["SHOP_RETENTION"] == 7200.0  # its own conversion, not float()
    assert "UNRELATED" not in values


def test_a_bad_environment_value_stops_the_settings_module() -> None:
    with pytest.raises(ValueError):
        SHOP.from_environment({"SHOP_MAX_LINES": "many"})


@pytest.mark.parametrize(
    ("hint", "value", "expected"),
    [
        (bool, "on", True),
        (bool, "0", False),
        (bool, "", False),
        (bool, 1, True),
        (int, "7", 7),
        (float, 3, 3.0),
        (tuple[str, ...], "a, b", ("a", "b")),
        (tuple[int, ...], ["1", 2], (1, 2)),
        (frozenset[str], ("a", "a"), frozenset({"a"})),
        (dict[str, float], [("a", 1.0)], {"a": 1.0}),
    ],
)
def test_values_convert_by_type(hint: Any, value: Any, expected: Any) -> None:
    assert convert_to(hint, value) == expected


def test_a_type_without_a_conversion_needs_one_declared() -> None:
    @dataclass(frozen=True)
    class Odd:
        when: complex = 0j

    with pytest.raises(TypeError, match="convert"):
        AppSettings(Odd).from_environment({"WHEN": "1j"})


def test_every_field_needs_a_default_and_the_schema_a_dataclass() -> None:
    @dataclass(frozen=True)
    class NoDefault:
        limit: int

    with pytest.raises(TypeError, match="needs a default"):
        AppSettings(NoDefault)
    with pytest.raises(TypeError, match="not a dataclass"):
        AppSettings(dict)


DJANGO = """
import json
from dataclasses import dataclass

import django
from django.conf import settings

settings.configure(SHOP_MAX_LINES="7", CURRENCIES=["vnd"], OTHER=1)
django.setup()

from django.test import override_settings

from common.conf import AppSettings, setting, upper_codes


@dataclass(frozen=True)
class ShopSettings:
    max_lines: int = 20
    namespace: str = "shop"
    currencies: tuple[str, ...] = setting(("USD",), name="CURRENCIES", convert=upper_codes)


config = AppSettings(ShopSettings, prefix="SHOP_")
out = {}
first = config()
out["read"] = [first.max_lines, first.namespace, list(first.currencies)]
out["kept"] = config() is first
with override_settings(OTHER=2):
    out["kept_after_another_apps_change"] = config() is first
with override_settings(SHOP_MAX_LINES=1, SHOP_NAMESPACE="test"):
    out["overridden"] = [config().max_lines, config().namespace]
out["restored"] = [config().max_lines, config().namespace]
settings.SHOP_MAX_LINES = 9  # assigned by hand: no signal, so the kept value stays
out["unsignalled"] = config().max_lines
try:
    config().max_lines = 3
except Exception as error:
    out["frozen"] = type(error).__name__
print(json.dumps(out))
"""


def test_django_settings_are_read_kept_and_refreshed_when_a_test_overrides_them() -> None:
    out = run_python_json(DJANGO)
    assert out["read"] == [7, "shop", ["VND"]]  # converted; the default where unset
    assert out["kept"] is True
    assert out["kept_after_another_apps_change"] is True
    assert out["overridden"] == [1, "test"]
    assert out["restored"] == [7, "shop"]
    assert out["unsignalled"] == 7
    assert out["frozen"] == "FrozenInstanceError"
