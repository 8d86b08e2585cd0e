"""Fixed-window rate limits kept in Redis, shared by every API process: 429 with `Retry-After`."""

from __future__ import annotations

import hashlib
import time
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from api.deps import CurrentUser, ResourcesDep
from api.problems import ProblemError
from infra.audit import audit


def client_ip(request: Request) -> str:
    # Behind a proxy, uvicorn's --proxy-headers/--forwarded-allow-ips sets this from X-Forwarded-For
    # for trusted proxies only; a client cannot choose its own address here.
    return request.client.host if request.client else "unknown"


async def hit(redis: Redis, scope: str, subject: str, limit: int, window_s: int) -> None:
    """Counts one request for `subject` in the current window; raises 429 past `limit`."""
    now = time.time()
    window = int(now // window_s)
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    key = f"ratelimit:{scope}:{digest}:{window}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_s + 1)
        count, _ = await pipe.execute()
    if int(count) > limit:
        retry_after = max(1, int((window + 1) * window_s - now) + 1)
        audit("ratelimit.refused", scope=scope, result="429")
        raise ProblemError(
            429,
            "Too many requests",
            f"at most {limit} requests per {window_s} s; retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


async def limit_commands(request: Request, user: CurrentUser, resources: ResourcesDep) -> None:
    settings = resources.settings
    await hit(
        resources.redis, "ip", client_ip(request), settings.rate_limit_per_ip, settings.rate_limit_window_s
    )
    await hit(
        resources.redis, "user", user.user_id, settings.rate_limit_per_user, settings.rate_limit_window_s
    )


async def limit_auth(request: Request, resources: ResourcesDep) -> None:
    settings = resources.settings
    await hit(
        resources.redis,
        "auth-ip",
        client_ip(request),
        settings.auth_rate_limit_per_ip,
        settings.auth_rate_limit_window_s,
    )


async def limit_login_username(username: str, resources: ResourcesDep) -> None:
    settings = resources.settings
    await hit(
        resources.redis,
        "login-user",
        username.lower(),
        settings.auth_rate_limit_per_username,
        settings.auth_rate_limit_window_s,
    )


CommandRateLimit = Annotated[None, Depends(limit_commands)]
AuthRateLimit = Annotated[None, Depends(limit_auth)]
