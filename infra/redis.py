"""Redis client factory (idempotency keys, accepted-command cache, token denylist, rate limits)."""

from __future__ import annotations

from redis.asyncio import Redis

from infra.settings import Settings


def make_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.redis_url,
        decode_responses=False,
        socket_timeout=5,
        socket_connect_timeout=3,
        health_check_interval=30,
    )
