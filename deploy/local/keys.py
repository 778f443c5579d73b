"""The development RS256 key pair of the access tokens (var/keys/, git-ignored).

`up` calls `ensure_dev_keys()`: when neither the environment (JWT_PRIVATE_KEY)
nor the key file provides a private key, it generates an RSA 2048 pair; a missing
public key is derived from the private one. The private key is written 0600.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common import jwt_keys
from deploy.local.console import step


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _public_pem(private: rsa.RSAPrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def ensure_dev_keys() -> None:
    """Generate the development key pair when none is configured (idempotent)."""
    if os.environ.get("JWT_PRIVATE_KEY"):
        step("JWT keys come from the environment")
        return
    private_file, public_file = jwt_keys.private_key_file(), jwt_keys.public_key_file()
    if private_file.exists():
        if public_file.exists() or os.environ.get("JWT_PUBLIC_KEY"):
            step(f"JWT keys present ({private_file.parent})")
            return
        loaded = serialization.load_pem_private_key(private_file.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise SystemExit(f"{private_file} is not an RSA private key")
        _write(public_file, _public_pem(loaded), 0o644)
        step(f"JWT public key derived from the private key ({public_file})")
        return
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(private_file, private_pem, 0o600)
    _write(public_file, _public_pem(private), 0o644)
    step(f"JWT development key pair generated ({private_file.parent}, private key 0600)")
