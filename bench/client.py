"""An asyncio HTTP client of the edge: pooled keep-alive connections, tokens, retries."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp

PASSWORD = "bench-Secret-42"
RETRYABLE = {429, 502, 503, 504}  # 502/504: a service restarting behind the edge


class EdgeError(RuntimeError):
    pass


@dataclass
class Account:
    email: str
    customer_id: int
    token: str


@dataclass
class Answer:
    status: int
    body: Any
    sent_at: float  # epoch seconds, this machine's clock (as the services' timestamps)
    answered_at: float
    attempts: int


class Edge:
    """One session per use: `purchases` for the load (as many connections as the
    concurrency), `control` for setup and tracking, so tracking never queues behind
    the load in this process (it may still queue behind it in the services)."""

    def __init__(
        self,
        base_url: str,
        *,
        connections: int,
        timeout: float = 60.0,
        retry_seconds: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.errors: Counter[str] = Counter()
        # None: a request gives up after its `retries`; else it retries until this many
        # seconds have passed since it was first sent (a client riding out an outage).
        self.retry_seconds = retry_seconds
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=timeout),
            json_serialize=json.dumps,
        )

    async def close(self) -> None:
        await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        account: Account | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        retries: int = 5,
    ) -> Answer:
        """Send, retrying transport errors and 429/502/503/504 with backoff (honouring
        Retry-After), `retries` times or for `retry_seconds`. Safe for POST /purchases
        only with an Idempotency-Key."""
        sent_at = time.time()
        delay = 0.2
        attempt = 0
        while True:
            attempt += 1
            if self.retry_seconds is None:
                last = attempt > retries
            else:
                last = time.time() - sent_at >= self.retry_seconds
            all_headers = dict(headers or {})
            if account is not None:
                all_headers["Authorization"] = f"Bearer {account.token}"
            try:
                async with self._session.request(
                    method, self.base_url + path, json=json_body, headers=all_headers
                ) as response:
                    text = await response.text()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientError) as error:
                kind = "timeout" if isinstance(error, TimeoutError) else type(error).__name__
                self.errors[f"{method} {kind}"] += 1
                if last:
                    raise EdgeError(f"{method} {path}: {kind}") from error
            else:
                if status not in RETRYABLE or last:
                    body = json.loads(text) if text and text[0] in "[{" else text
                    return Answer(status, body, sent_at, time.time(), attempt)
                self.errors[f"{method} http {status}"] += 1
                if retry_after and retry_after.isdigit():
                    delay = max(delay, float(retry_after))
            if self.retry_seconds is not None:  # never wait past the patience
                delay = min(delay, max(0.0, sent_at + self.retry_seconds - time.time()))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def expect(self, status: int, method: str, path: str, **kwargs: Any) -> Any:
        answer = await self.request(method, path, **kwargs)
        if answer.status != status:
            raise EdgeError(f"{method} {path}: {answer.status} {answer.body!r:.300}")
        return answer.body

    async def register(self, kind: str) -> Account:
        email = f"bench-{kind}-{uuid.uuid4().hex[:12]}@example.com"
        body = await self.expect(
            201,
            "POST",
            "/api/v1/account/auth/register",
            json_body={
                "email": email,
                "password": PASSWORD,
                "first_name": "Bench",
                "last_name": "Mark",
                "address": "1 Load Street",
                "phone_number": "0123456789",
            },
        )
        return Account(email, int(body["customer_id"]), str(body["access_token"]))

    async def login(self, account: Account) -> None:
        body = await self.expect(
            200,
            "POST",
            "/api/v1/account/auth/login",
            json_body={"email": account.email, "password": PASSWORD},
        )
        account.token = str(body["access_token"])

    async def as_customer(self, method: str, path: str, account: Account, **kwargs: Any) -> Answer:
        """A request as `account`; one log-in again if its access token expired (15 min)."""
        answer = await self.request(method, path, account=account, **kwargs)
        if answer.status == 401:
            await self.login(account)
            answer = await self.request(method, path, account=account, **kwargs)
        return answer
