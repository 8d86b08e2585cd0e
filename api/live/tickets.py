"""Stream tickets: `EventSource` cannot send an Authorization header, so a signed-in client trades its
token for a ticket and puts that in the stream's URL. A ticket is random, bound to the user and the
token it was issued for, lives `stream_ticket_ttl_s` seconds and is good for one connection (GETDEL).
Only its hash is stored, so a Redis dump holds no usable ticket."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

from api.security import TokenClaims


@dataclass(frozen=True)
class Ticket:
    user_id: str
    jti: str


def _key(ticket: str) -> str:
    return f"stream-ticket:{hashlib.sha256(ticket.encode()).hexdigest()}"


class StreamTickets:
    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self._redis = redis
        self.ttl_s = ttl_s

    async def issue(self, claims: TokenClaims) -> str:
        ticket = secrets.token_urlsafe(32)
        value = json.dumps({"user_id": claims.user_id, "jti": claims.jti})
        await self._redis.set(_key(ticket), value, ex=self.ttl_s)
        return ticket

    async def redeem(self, ticket: str) -> Ticket | None:
        """The ticket's owner, once; None for an unknown, used or expired ticket."""
        stored = await self._redis.getdel(_key(ticket))
        if stored is None:
            return None
        value = json.loads(stored)
        return Ticket(user_id=str(value["user_id"]), jti=str(value["jti"]))
