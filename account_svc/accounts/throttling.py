"""Login throttling: failed logins counted per email and per client in the Redis Cluster.

After LOGIN_THROTTLE_EMAIL_THRESHOLD failures for one email, or
LOGIN_THROTTLE_IP_THRESHOLD failures from one client address, within
LOGIN_THROTTLE_WINDOW_SECONDS of the first failure, every login for that email
(or from that client) answers 429 with Retry-After until the window ends, even
with the right password, so guessing cannot continue. A success clears the
email's counter. The window is fixed from the first failure (SET NX EX, then
INCR, which keeps the TTL), so a crash between the two cannot leave a counter
without expiry.

The counters live in the shared cache cluster so every replica sees them. A cache
outage must not lock customers out: the throttle then fails open and logs.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from common.errors import ApplicationError, ErrorCode
from common.redis_cluster import cluster_client

logger = logging.getLogger(__name__)

KEY_PREFIX = "account:login-failures"


@dataclass(frozen=True)
class LoginThrottleSettings:
    window_seconds: int
    email_threshold: int
    ip_threshold: int

    @classmethod
    def current(cls) -> LoginThrottleSettings:
        # Defaults as in account_svc/config/settings.py, which reads the environment.
        return cls(
            window_seconds=int(getattr(settings, "LOGIN_THROTTLE_WINDOW_SECONDS", 300)),
            email_threshold=int(getattr(settings, "LOGIN_THROTTLE_EMAIL_THRESHOLD", 5)),
            ip_threshold=int(getattr(settings, "LOGIN_THROTTLE_IP_THRESHOLD", 100)),
        )


def _digest(value: str) -> str:
    # Keys carry no personal data in clear.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def email_key(email: str) -> str:
    return f"{KEY_PREFIX}:email:{_digest(email)}"


def client_key(client_ip: str) -> str:
    return f"{KEY_PREFIX}:ip:{_digest(client_ip)}"


def _keys(email: str, client_ip: str | None, conf: LoginThrottleSettings) -> list[tuple[str, int]]:
    keys = [(email_key(email), conf.email_threshold)]
    if client_ip:
        keys.append((client_key(client_ip), conf.ip_threshold))
    return keys


def login_throttle_check(*, email: str, client_ip: str | None) -> None:
    """Raise THROTTLED (429, details.retry_after) while email or client is locked out."""
    conf = LoginThrottleSettings.current()
    client = cluster_client()
    try:
        for key, threshold in _keys(email, client_ip, conf):
            count = client.get(key)
            if count is not None and int(count) >= threshold:
                ttl = int(client.ttl(key))
                retry_after = ttl if ttl > 0 else conf.window_seconds
                raise ApplicationError(
                    ErrorCode.THROTTLED,
                    "Too many failed logins; try again later.",
                    {"retry_after": retry_after},
                )
    except RedisError:
        logger.warning("login throttle unavailable (check skipped)", exc_info=True)


def login_failure_record(*, email: str, client_ip: str | None) -> None:
    """Count one failed login against the email and the client."""
    conf = LoginThrottleSettings.current()
    client = cluster_client()
    try:
        for key, _ in _keys(email, client_ip, conf):
            client.set(key, 0, ex=conf.window_seconds, nx=True)
            client.incr(key)
    except RedisError:
        logger.warning("login throttle unavailable (failure not counted)", exc_info=True)


def login_success_record(*, email: str) -> None:
    """A successful login clears the email's failures (not the client's)."""
    try:
        cluster_client().delete(email_key(email))
    except RedisError:
        logger.warning("login throttle unavailable (failures not cleared)", exc_info=True)
