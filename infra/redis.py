"""Redis client factory (idempotency keys, accepted-command cache, token denylist, rate limits)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from infra.settings import Settings


def make_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.redis_url,
        decode_responses=False,
        socket_timeout=5,
        socket_connect_timeout=3,
        health_check_interval=30,
        # A pooled connection to a Redis that restarted fails on first use: retry on a fresh one rather
        # than answer 503. Repeating a command whose reply was lost costs at most a rate-limit token or
        # a 409 on the request's own claim (which expires in seconds); no command writes money.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
        retry_on_error=[ConnectionError, TimeoutError],
    )
