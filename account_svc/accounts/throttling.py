"""Login throttling that slows guessing without locking the owner out (docs/adr/0016).

Failed logins are counted in the Redis Cluster, each counter in a fixed window of
LOGIN_THROTTLE_WINDOW_SECONDS from its first failure (SET NX EX, then INCR, which keeps
the TTL, so a crash between the two cannot leave a counter without expiry). A login is
refused with 429 and Retry-After, before its password is checked, while one of its
counters is at its threshold:

- pair: this account from this client (the owner's device, or else the client's
  address), LOGIN_THROTTLE_PAIR_THRESHOLD. A brute force from one client stops here,
  even once it finds the password;
- address: this client address across every account, LOGIN_THROTTLE_IP_THRESHOLD
  (credential stuffing from one client);
- account: this account from clients it does not know, LOGIN_THROTTLE_EMAIL_THRESHOLD
  (distributed guessing). It slows the guessers to that many tries per window without
  refusing the owner: a client the owner signed in from before (login_clients: a device
  cookie, or a known address) is let past it.

A client with the owner's device cookie is counted and limited on its pair only (the
cookie is bound to the account, so it buys nothing against other accounts). A success
clears the client's own pair and nothing else: clearing the account's counter would hand
distributed guessers a fresh budget whenever the owner signs in, and clearing the
address's would let a guesser reset it by signing in to an account of its own.

The counters live in the shared cache cluster so every replica sees them. A cache
outage must not lock customers out: the throttle then fails open and logs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from account_svc.accounts.conf import LoginSettings, config
from account_svc.accounts.login_clients import address_is_known, client_network, pseudonym
from common.cache.client import CACHE_ERRORS
from common.errors import ApplicationError, ErrorCode
from common.redis_cluster import cluster_client

logger = logging.getLogger(__name__)

KEY_PREFIX = "account:login-failures"


@dataclass(frozen=True)
class LoginAttempt:
    """Who tries to sign in to which account, as far as the service can tell."""

    email: str
    address: str | None = None  # the client's address as the edge saw it
    device_id: str | None = None  # from the owner's device cookie for this account


@dataclass(frozen=True)
class _Limit:
    name: str
    key: str
    threshold: int
    waived_for_known_address: bool = False


def pair_key(attempt: LoginAttempt) -> str | None:
    """The counter of this account from this client; None when the client is unnamed."""
    if attempt.device_id:
        client = f"device:{attempt.device_id}"
    elif attempt.address:
        client = f"ip:{client_network(attempt.address)}"
    else:
        return None
    return f"{KEY_PREFIX}:pair:{pseudonym(attempt.email)}:{pseudonym(client)}"


def email_key(email: str) -> str:
    return f"{KEY_PREFIX}:email:{pseudonym(email)}"


def address_key(address: str) -> str:
    return f"{KEY_PREFIX}:ip:{pseudonym(client_network(address))}"


def _limits(attempt: LoginAttempt, conf: LoginSettings) -> list[_Limit]:
    """The counters this attempt is checked against and counted on, pair first."""
    pair = pair_key(attempt)
    limits = []
    if pair:
        limits.append(_Limit("pair", pair, conf.throttle_pair_threshold))
    if attempt.device_id:
        return limits
    if attempt.address:
        limits.append(_Limit("address", address_key(attempt.address), conf.throttle_ip_threshold))
    limits.append(
        _Limit(
            "account",
            email_key(attempt.email),
            conf.throttle_email_threshold,
            waived_for_known_address=attempt.address is not None,
        )
    )
    return limits


def _throttled(retry_after: int) -> ApplicationError:
    return ApplicationError(
        ErrorCode.THROTTLED,
        "Too many failed logins; try again later.",
        {"retry_after": retry_after},
    )


def login_throttle_check(*, attempt: LoginAttempt) -> None:
    """Raise THROTTLED (429, details.retry_after) while one of the attempt's limits is reached."""
    conf = config()
    try:
        client = cluster_client()
        for limit in _limits(attempt, conf):
            count = client.get(limit.key)
            if count is None or int(count) < limit.threshold:
                continue
            if (
                limit.waived_for_known_address
                and attempt.address
                and address_is_known(email=attempt.email, address=attempt.address)
            ):
                continue
            ttl = int(client.ttl(limit.key))
            raise _throttled(ttl if ttl > 0 else conf.throttle_window_seconds)
    except CACHE_ERRORS:
        logger.warning("login throttle unavailable (check skipped)", exc_info=True)


def login_failure_record(*, attempt: LoginAttempt) -> None:
    """Count one failed login on each of the attempt's counters."""
    conf = config()
    try:
        client = cluster_client()
        for limit in _limits(attempt, conf):
            client.set(limit.key, 0, ex=conf.throttle_window_seconds, nx=True)
            if int(client.incr(limit.key)) == limit.threshold:
                # Once per window and counter: what an operator looks for under attack.
                logger.info("login throttle: %s limit reached (%s)", limit.name, limit.key)
    except CACHE_ERRORS:
        logger.warning("login throttle unavailable (failure not counted)", exc_info=True)


def login_success_record(*, attempt: LoginAttempt) -> None:
    """A success clears the client's own failures on this account (see the module doc)."""
    pair = pair_key(attempt)
    if pair is None:
        return
    try:
        cluster_client().delete(pair)
    except CACHE_ERRORS:
        logger.warning("login throttle unavailable (failures not cleared)", exc_info=True)
