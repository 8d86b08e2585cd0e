"""Admission in one Redis round trip: the token denylist, the rate limits and the request's own write.

One Lua script per request does what used to take a round trip each. It refuses a revoked token; says
when the denylist must be reloaded first (its marker is gone: Redis lost its data); applies every rate
limit of the request; and only once all of them passed, claims an Idempotency-Key (answering with what
the key holds if it is taken) or writes the command's accepted record.

Rate limits are GCRA, the generic cell rate algorithm (as in redis-cell): a limit of N requests per W
seconds lets N through at once, then one every W/N seconds. Each subject has one key holding its
theoretical arrival time; there are no windows, so no double burst at a window's edge, and the
Retry-After is the exact wait until the next request would pass. The time is Redis's own, so every API
process and host agrees on it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from api.problems import ProblemError, unauthorized
from api.revocation import LOADED_MARKER, TokenDenylist, denylist_key
from infra.audit import audit

# KEYS: [denylist entry, denylist marker] if ARGV[1] == '1', one key per limit, then the write's key.
# ARGV: check the denylist?, the limit count, (interval us, tolerance us) per limit,
#       the write ('' | 'claim' | 'record'), its value and its TTL in seconds.
_SCRIPT = """
local k, a = 1, 1
local function next_key() local v = KEYS[k]; k = k + 1; return v end
local function next_arg() local v = ARGV[a]; a = a + 1; return v end

if next_arg() == '1' then
  local entry = next_key()
  local marker = next_key()
  if redis.call('EXISTS', entry) == 1 then return {'revoked'} end
  if redis.call('EXISTS', marker) == 0 then return {'reload'} end
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local count = tonumber(next_arg())
local keys, tats = {}, {}
for i = 1, count do
  local key = next_key()
  local interval = tonumber(next_arg())
  local tolerance = tonumber(next_arg())
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait > 0 then return {'limited', i, wait} end
  keys[i] = key
  tats[i] = tat + interval
end
-- Only a request that passes every limit counts against any of them.
for i = 1, count do
  local ttl_ms = math.ceil((tats[i] - now) / 1000)
  redis.call('SET', keys[i], string.format('%d', tats[i]), 'PX', ttl_ms)
end

local mode = next_arg()
if mode == 'claim' then
  local key = next_key()
  local value = next_arg()
  local ttl = next_arg()
  if redis.call('SET', key, value, 'NX', 'EX', ttl) then return {'claimed'} end
  return {'taken', redis.call('GET', key)}
end
if mode == 'record' then
  local key = next_key()
  local value = next_arg()
  local ttl = next_arg()
  redis.call('SET', key, value, 'EX', ttl)
end
return {'ok'}
"""
_RELOAD_ATTEMPTS = 3


@dataclass(frozen=True)
class Limit:
    """At most `requests` per `window_s` seconds for `subject`, as a burst or spread out."""

    scope: str
    subject: str
    requests: int
    window_s: int

    @property
    def key(self) -> str:
        digest = hashlib.sha256(self.subject.encode()).hexdigest()[:32]
        # The parameters are part of the key: processes configured differently never share a bucket.
        return f"ratelimit:{self.scope}:{self.requests}/{self.window_s}:{digest}"

    @property
    def interval_us(self) -> int:
        return max(1, self.window_s * 1_000_000 // self.requests)

    @property
    def tolerance_us(self) -> int:
        return self.interval_us * (self.requests - 1)


@dataclass(frozen=True)
class Write:
    """Stored once the request is admitted: a claim (`SET NX`) or a plain record."""

    key: str
    value: bytes
    ttl_s: int
    claim: bool


@dataclass(frozen=True)
class Admission:
    """`claimed` when the write was a claim that this request now holds; else what the key held."""

    claimed: bool = False
    found: bytes | None = None


def _too_many(limit: Limit, wait_us: int) -> ProblemError:
    retry_after = max(1, math.ceil(wait_us / 1_000_000))
    audit("ratelimit.refused", scope=limit.scope, result="429")
    return ProblemError(
        429,
        "Too many requests",
        f"at most {limit.requests} requests per {limit.window_s} s; retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


class Gate:
    def __init__(self, redis: Redis, denylist: TokenDenylist) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._denylist = denylist

    async def admit(
        self, *, jti: str | None, limits: Sequence[Limit], write: Write | None = None
    ) -> Admission:
        """401 for a revoked token, 429 past a limit; otherwise the write is done. One round trip, except
        after Redis lost its data (the denylist is reloaded from DynamoDB first)."""
        keys: list[str] = [] if jti is None else [denylist_key(jti), LOADED_MARKER]
        args: list[str | int | bytes] = ["0" if jti is None else "1", len(limits)]
        for limit in limits:
            keys.append(limit.key)
            args += [limit.interval_us, limit.tolerance_us]
        if write is None:
            args.append("")
        else:
            keys.append(write.key)
            args += ["claim" if write.claim else "record", write.value, write.ttl_s]
        for _ in range(_RELOAD_ATTEMPTS):
            reply = await self._script(keys=keys, args=args)
            verdict = reply[0]
            if verdict == b"reload":
                await self._denylist.reload()
                continue
            if verdict == b"revoked":
                raise unauthorized("the token was revoked")
            if verdict == b"limited":
                raise _too_many(limits[int(reply[1]) - 1], int(reply[2]))
            if verdict == b"claimed":
                return Admission(claimed=True)
            if verdict == b"taken":
                return Admission(found=reply[1])
            return Admission()
        # Redis lost its data again while we reloaded: let the client come back in a moment.
        raise ProblemError(503, "Service unavailable", "please retry", headers={"Retry-After": "1"})
