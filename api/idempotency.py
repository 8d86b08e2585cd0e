"""`Idempotency-Key`: the same key and body return the same receipt and publish nothing new."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from api.problems import ProblemError, field_error

KEY_PATTERN = re.compile(r"^[\x20-\x7e]{1,128}$")


@dataclass(frozen=True)
class Claim:
    """A key this request now holds: complete it with the receipt, or release it if publishing failed."""

    redis_key: str
    fingerprint: str


def validate_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise field_error("header.Idempotency-Key", "must be 1-128 printable ASCII characters")
    return key


def fingerprint(kind: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"kind": kind, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def claim(self, account_id: str, key: str, print_: str) -> Claim | dict[str, Any]:
        """Either a fresh claim, or the receipt stored for the same key and body."""
        redis_key = f"idem:{account_id}:{hashlib.sha256(key.encode()).hexdigest()}"
        pending = json.dumps({"fingerprint": print_, "receipt": None})
        if await self._redis.set(redis_key, pending, nx=True, ex=self._ttl):
            return Claim(redis_key, print_)
        stored_raw = await self._redis.get(redis_key)
        if stored_raw is None:  # expired between the two calls: claim again
            return await self.claim(account_id, key, print_)
        stored = json.loads(stored_raw)
        if stored["fingerprint"] != print_:
            raise field_error(
                "header.Idempotency-Key", "this key was already used with a different request body"
            )
        if stored["receipt"] is None:
            raise ProblemError(
                409,
                "Request in progress",
                "a request with this Idempotency-Key is still being processed",
                headers={"Retry-After": "1"},
            )
        receipt: dict[str, Any] = stored["receipt"]
        return receipt

    async def complete(self, claim: Claim, receipt: dict[str, Any]) -> None:
        value = json.dumps({"fingerprint": claim.fingerprint, "receipt": receipt})
        await self._redis.set(claim.redis_key, value, ex=self._ttl)

    async def release(self, claim: Claim) -> None:
        await self._redis.delete(claim.redis_key)
