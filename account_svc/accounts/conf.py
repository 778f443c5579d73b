"""The account service's own settings: declared once here, with their defaults.

config/settings.py takes them from the environment (`config.from_environment()`); code
reads `config().throttle_window_seconds`.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.conf import AppSettings


@dataclass(frozen=True)
class LoginSettings:
    # Login throttling (accounts/throttling.py, docs/adr/0016): failed logins within the
    # window, per account and client, per client address, and per account from clients
    # it does not know, before 429.
    throttle_window_seconds: int = 300
    throttle_pair_threshold: int = 5
    throttle_ip_threshold: int = 100
    throttle_email_threshold: int = 10
    # How long a client stays known (device cookie, address) after its last sign-in
    # (accounts/login_clients.py); a Secure cookie when served over HTTPS.
    known_client_seconds: int = 90 * 86400
    device_cookie_secure: bool = False


config = AppSettings(LoginSettings, prefix="LOGIN_")
