"""The account service's own settings, typed.

Their values and environment variables live in account_svc/config/settings.py (the type
checker's settings module does not declare them, hence getattr). Read on every use: a
login asks once, and a test's override_settings shows at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings


def _setting(name: str) -> Any:
    return getattr(settings, name)


@dataclass(frozen=True)
class LoginConfig:
    window_seconds: int
    pair_threshold: int
    ip_threshold: int
    email_threshold: int
    known_client_seconds: int
    device_cookie_secure: bool


def login_config() -> LoginConfig:
    """Login throttling and known clients (docs/adr/0016)."""
    return LoginConfig(
        window_seconds=int(_setting("LOGIN_THROTTLE_WINDOW_SECONDS")),
        pair_threshold=int(_setting("LOGIN_THROTTLE_PAIR_THRESHOLD")),
        ip_threshold=int(_setting("LOGIN_THROTTLE_IP_THRESHOLD")),
        email_threshold=int(_setting("LOGIN_THROTTLE_EMAIL_THRESHOLD")),
        known_client_seconds=int(_setting("LOGIN_KNOWN_CLIENT_SECONDS")),
        device_cookie_secure=bool(_setting("LOGIN_DEVICE_COOKIE_SECURE")),
    )
