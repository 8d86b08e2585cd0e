"""`Idempotency-Key`: a retried POST yields the same command, which takes effect at most once.

The command id is derived from the account and the key, so whatever is lost (Redis, the API process,
the answer on the wire), a retry publishes the very same command and the consumers' dedupe records make
it a no-op. Three stores, each for one job:
- a short Redis *claim* keeps two concurrent requests with the same key from racing (409 meanwhile); it
  expires in seconds, so a request that crashed holding it blocks nobody for long;
- the *receipt* cached in Redis answers ordinary retries without publishing again;
- the *durable record* in DynamoDB pins the key to its first body, so a different body is refused even
  after Redis lost everything, and a retry after a crash republishes with the original acceptance time.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from api.gate import Write
from api.problems import ProblemError, field_error
from infra.dynamo.idempotency_records import DynamoIdempotencyRecords, IdempotencyRecord

KEY_PATTERN = re.compile(r"^[\x20-\x7e]{1,128}$")
# Fixed forever: changing it would give every key a new command id, i.e. let retries take effect twice.
COMMAND_ID_NAMESPACE = uuid.UUID("0f9a3c52-4d8e-4b61-9c07-6a1de2b85f43")


def validate_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise field_error("header.Idempotency-Key", "must be 1-128 printable ASCII characters")
    return key


def fingerprint(kind: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"kind": kind, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def command_id_for(account_id: str, key: str) -> uuid.UUID:
    """The one command id a key can ever stand for (account ids hold no newline)."""
    return uuid.uuid5(COMMAND_ID_NAMESPACE, f"{account_id}\n{key}")


def _different_body() -> ProblemError:
    return field_error("header.Idempotency-Key", "this key was already used with a different request body")


@dataclass(frozen=True)
class Claim:
    """A key this request now holds: settle it with the receipt, or release it if it could not publish."""

    redis_key: str
    account_id: str
    key_digest: str
    fingerprint: str
    command_id: uuid.UUID


class IdempotencyStore:
    """The claim and the receipt live in Redis (written by the admission script and the intake's one
    pipeline after the publish); the durable record in DynamoDB."""

    def __init__(
        self, redis: Redis, records: DynamoIdempotencyRecords, *, receipt_ttl_s: int, claim_ttl_s: int
    ) -> None:
        self._redis = redis
        self._records = records
        self._receipt_ttl = receipt_ttl_s
        self._claim_ttl = claim_ttl_s

    def claim_for(self, account_id: str, key: str, print_: str) -> Claim:
        digest = hashlib.sha256(key.encode()).hexdigest()
        redis_key = f"idem:{account_id}:{digest}"
        return Claim(redis_key, account_id, digest, print_, command_id_for(account_id, key))

    def claim_write(self, claim: Claim) -> Write:
        """The claim as the admission script takes it: `SET NX` with a short TTL, no receipt yet."""
        pending = json.dumps({"fingerprint": claim.fingerprint, "receipt": None}).encode()
        return Write(claim.redis_key, pending, self._claim_ttl, claim=True)

    def answer(self, claim: Claim, stored_raw: bytes | None) -> dict[str, Any]:
        """For a key another request claimed: its receipt, 422 for another body, 409 while in progress."""
        stored = json.loads(stored_raw) if stored_raw is not None else None
        if stored is not None and stored["fingerprint"] != claim.fingerprint:
            raise _different_body()
        if stored is None or stored["receipt"] is None:
            raise ProblemError(
                409,
                "Request in progress",
                "a request with this Idempotency-Key is still being processed",
                headers={"Retry-After": "1"},
            )
        receipt: dict[str, Any] = stored["receipt"]
        return receipt

    async def pin(self, claim: Claim, kind: str, now: datetime) -> IdempotencyRecord:
        """Records the key durably; for a key seen before, its first record (422 if the body differs)."""
        wanted = IdempotencyRecord(claim.command_id, kind, claim.fingerprint, now)
        record = await self._records.remember(claim.account_id, claim.key_digest, wanted)
        if record.fingerprint != claim.fingerprint or record.command_id != claim.command_id:
            raise _different_body()
        return record

    def complete(self, pipe: Pipeline, claim: Claim, receipt: dict[str, Any]) -> None:
        """Queues the receipt on the intake's pipeline, which also writes the accepted record."""
        value = json.dumps({"fingerprint": claim.fingerprint, "receipt": receipt})
        pipe.set(claim.redis_key, value, ex=self._receipt_ttl)

    async def release(self, claim: Claim) -> None:
        await self._redis.delete(claim.redis_key)
