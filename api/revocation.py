"""Logged-out tokens stay refused until they expire, whatever happens to Redis.

Every revocation is written to DynamoDB first, then to the Redis denylist that requests check. A marker
key says "this Redis holds the whole denylist"; a Redis that lost its data has no marker, and the first
request that notices reloads the denylist from DynamoDB before answering. The check itself is part of
the request's one admission round trip (api/gate.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import structlog
from redis.asyncio import Redis

from infra.dynamo.revocations import DynamoRevocations

log = structlog.get_logger(__name__)
LOADED_MARKER = "denylist:loaded"


def denylist_key(jti: str) -> str:
    return f"denylist:{jti}"


class TokenDenylist:
    def __init__(self, redis: Redis, revocations: DynamoRevocations, max_token_ttl_s: int) -> None:
        self._redis = redis
        self._revocations = revocations
        self._max_token_ttl_s = max_token_ttl_s
        self._reloading = asyncio.Lock()

    async def revoke(self, jti: str, expires_at: int) -> None:
        await self._revocations.revoke(jti, expires_at)
        await self._redis.set(denylist_key(jti), b"1", exat=expires_at)

    async def reload(self) -> None:
        """Rebuilds the Redis denylist from DynamoDB, unless another request did it meanwhile."""
        async with self._reloading:
            if await self._redis.exists(LOADED_MARKER):
                return  # another request of this process reloaded it meanwhile
            active = await self._revocations.active(datetime.now(UTC), self._max_token_ttl_s)
            now = int(time.time())
            async with self._redis.pipeline(transaction=False) as pipe:
                for jti, expires_at in active.items():
                    if expires_at > now:
                        pipe.set(denylist_key(jti), b"1", exat=expires_at)
                pipe.set(LOADED_MARKER, b"1")
                await pipe.execute()
            log.warning("denylist.reloaded", tokens=len(active))
