"""Where the RS256 key pair of the access tokens comes from, and the SIMPLE_JWT
settings of the account service, which signs with it.

Only the account service signs, so only it loads the private key; every service
verifies with the public key. Each comes from the environment (PEM text) or a
file:

    JWT_PRIVATE_KEY / JWT_PRIVATE_KEY_FILE  (default var/keys/jwt_private.pem)
    JWT_PUBLIC_KEY  / JWT_PUBLIC_KEY_FILE   (default var/keys/jwt_public.pem)

`make up` generates a development pair into var/keys/ when none exists
(deploy/local/keys.py); no key is ever committed.
"""

from __future__ import annotations

import functools
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from common.settings import VAR_DIR

KEYS_DIR = VAR_DIR / "keys"
DEFAULT_PRIVATE_KEY_FILE = KEYS_DIR / "jwt_private.pem"
DEFAULT_PUBLIC_KEY_FILE = KEYS_DIR / "jwt_public.pem"


class KeyNotConfigured(ImproperlyConfigured):
    """A JWT key is neither in the environment nor in its file."""


def private_key_file() -> Path:
    return Path(os.environ.get("JWT_PRIVATE_KEY_FILE", DEFAULT_PRIVATE_KEY_FILE))


def public_key_file() -> Path:
    return Path(os.environ.get("JWT_PUBLIC_KEY_FILE", DEFAULT_PUBLIC_KEY_FILE))


def _load(env_name: str, path: Path) -> str:
    text = os.environ.get(env_name, "").strip()
    if text:
        # Some environments cannot hold newlines; accept "\n" escapes.
        return text.replace("\\n", "\n") + "\n"
    try:
        return path.read_text()
    except FileNotFoundError:
        raise KeyNotConfigured(
            f"no JWT key: set {env_name} or put a PEM file at {path} "
            "(`make up` creates a development pair)"
        ) from None


@functools.cache
def private_key_pem() -> str:
    """The PEM text of the signing (private) key; only the account service calls this."""
    return _load("JWT_PRIVATE_KEY", private_key_file())


@functools.cache
def public_key_pem() -> str:
    """The PEM text of the verifying (public) key, read once per process."""
    return _load("JWT_PUBLIC_KEY", public_key_file())


def clear_cache() -> None:
    """Forget the loaded keys (tests that switch keys)."""
    private_key_pem.cache_clear()
    public_key_pem.cache_clear()


def simple_jwt_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """SIMPLE_JWT for the one service that issues tokens (account): it signs with the
    private key; the claims and lifetimes match what common.auth verifies."""
    return {
        "ALGORITHM": settings["JWT_ALGORITHM"],
        "SIGNING_KEY": private_key_pem(),
        "VERIFYING_KEY": public_key_pem(),
        "ISSUER": settings["JWT_ISSUER"],
        "LEEWAY": settings["JWT_LEEWAY_SECONDS"],
        "ACCESS_TOKEN_LIFETIME": timedelta(seconds=settings["JWT_ACCESS_TOKEN_LIFETIME_SECONDS"]),
        "REFRESH_TOKEN_LIFETIME": timedelta(seconds=settings["JWT_REFRESH_TOKEN_LIFETIME_SECONDS"]),
        "ROTATE_REFRESH_TOKENS": True,
        "BLACKLIST_AFTER_ROTATION": True,
        "UPDATE_LAST_LOGIN": False,
        "AUTH_HEADER_TYPES": ("Bearer",),
        "USER_ID_FIELD": "id",
        "USER_ID_CLAIM": "user_id",
        "TOKEN_TYPE_CLAIM": "token_type",
        "JTI_CLAIM": "jti",
    }
