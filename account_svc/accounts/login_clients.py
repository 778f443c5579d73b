"""Clients an account knows: where its owner has signed in before (docs/adr/0016).

A successful login (or the registration) earns the client two marks, each valid for
LOGIN_KNOWN_CLIENT_SECONDS after the last sign-in that renewed it:
- a device token, the value of an HttpOnly cookie the answer sets: a random device id
  bound to the account, signed with the service's SECRET_KEY (django.core.signing), so
  a client cannot make one up or carry one over to another account;
- its address, kept per account in the Redis Cluster (the newest MAX_KNOWN_ADDRESSES),
  for the owner's clients that keep no cookies.

The login throttle (throttling.py) lets these clients past the per-account limit that
slows distributed guessing. Accounts and addresses appear only as keyed digests
(`pseudonym`): no personal data in clear in Redis or in the cookie.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time

from django.core import signing
from django.utils.crypto import salted_hmac

from account_svc.accounts.conf import config
from common.cache.client import CACHE_ERRORS
from common.redis_cluster import cluster_client

logger = logging.getLogger(__name__)

DEVICE_COOKIE = "account_login_device"
MAX_KNOWN_ADDRESSES = 20
_DEVICE_SALT = "account.login-device"
_PSEUDONYM_SALT = "account.login-clients"
_ADDRESSES_PREFIX = "account:login-addresses"


def known_for_seconds() -> int:
    return config().known_client_seconds


def pseudonym(value: str) -> str:
    """A keyed digest of an email or an address: stable across replicas (one SECRET_KEY),
    not reversible by hashing a list of candidates without the key."""
    return salted_hmac(_PSEUDONYM_SALT, value, algorithm="sha256").hexdigest()[:32]


def client_network(address: str) -> str:
    """The unit a client is counted by: an IPv4 address, or an IPv6 /64 (one subscriber's
    usual allocation, which a guesser could otherwise walk address by address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


# ------------------------------------------------------------------ device tokens


def device_id_from(*, email: str, token: str | None) -> str | None:
    """The device id of a device token this account issued and that has not expired;
    None for no token, a forged or expired one, or one of another account."""
    if not token:
        return None
    try:
        value = signing.loads(token, salt=_DEVICE_SALT, max_age=known_for_seconds())
    except signing.BadSignature:  # SignatureExpired included
        return None
    if not isinstance(value, dict) or value.get("account") != pseudonym(email):
        return None
    device = value.get("device")
    return device if isinstance(device, str) and device else None


def device_token_issue(*, email: str, device_id: str | None) -> str:
    """A device token for this account: the same device id renewed, or a new one."""
    device = device_id or secrets.token_urlsafe(16)
    return signing.dumps({"account": pseudonym(email), "device": device}, salt=_DEVICE_SALT)


# ---------------------------------------------------------------- known addresses


def _addresses_key(email: str) -> str:
    return f"{_ADDRESSES_PREFIX}:{pseudonym(email)}"


def address_is_known(*, email: str, address: str) -> bool:
    """Whether the owner signed in from this address (its /64 for IPv6) lately.
    Raises the cache's errors: the caller decides how to fail."""
    score = cluster_client().zscore(_addresses_key(email), pseudonym(client_network(address)))
    return score is not None and float(score) >= time.time() - known_for_seconds()


def address_remember(*, email: str, address: str) -> None:
    """Record a sign-in from this address; keep the newest MAX_KNOWN_ADDRESSES.
    A cache outage only skips it (logged)."""
    key, now, ttl = _addresses_key(email), time.time(), known_for_seconds()
    try:
        pipe = cluster_client().pipeline()  # one key, so one node
        pipe.zadd(key, {pseudonym(client_network(address)): now})
        pipe.zremrangebyscore(key, "-inf", now - ttl)
        pipe.zremrangebyrank(key, 0, -MAX_KNOWN_ADDRESSES - 1)
        pipe.expire(key, ttl)
        pipe.execute()
    except CACHE_ERRORS:
        logger.warning("known client addresses unavailable (address not recorded)", exc_info=True)
