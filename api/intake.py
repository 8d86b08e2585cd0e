"""Accepting a command: idempotency, publish (acknowledged by Kafka, within a bounded wait), the 202."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from api.deps import Caller
from api.gate import Write
from api.idempotency import Claim, fingerprint, validate_key
from api.live.announce import accepted_record
from api.problems import ProblemError
from api.rate_limit import command_limits
from api.resources import Resources
from infra.audit import audit
from producers.commands import Sent, envelope_for
from schemas.commands import Command
from schemas.envelope import Envelope, utc_now
from schemas.http import CommandReceipt

log = structlog.get_logger(__name__)


def receipt_for(command_id: uuid.UUID, kind: str) -> CommandReceipt:
    return CommandReceipt(command_id=command_id, kind=kind, status_url=f"/v1/commands/{command_id}")


def _unavailable() -> ProblemError:
    # The command may still reach the broker after we gave up waiting: only a retry with the same
    # Idempotency-Key is sure not to take effect twice, which is what the detail tells the client.
    return ProblemError(
        503,
        "Service unavailable",
        "the command could not be confirmed as queued; retry later with the same Idempotency-Key",
        headers={"Retry-After": "2"},
    )


def _accepted_record(envelope: Envelope[Command], kind: str, resources: Resources) -> Write:
    """What a poll finds before the status consumer has seen the command."""
    value = {"account_id": envelope.account_id, "kind": kind, "accepted_at": envelope.occurred_at.isoformat()}
    ttl_s = resources.settings.command_status_ttl_seconds
    return Write(f"command:{envelope.id}", json.dumps(value).encode(), ttl_s, claim=False)


async def submit(
    command: Command,
    caller: Caller,
    resources: Resources,
    idempotency_key: str | None,
    vet: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Admits, vets (`vet` raises a ProblemError to refuse), publishes and answers the receipt.

    Redis is met once for a POST without a key: the admission script checks the token and the limits
    and writes the accepted record. It is written before the publish (nobody knows the command's id
    until the 202) and dropped if the command is not accepted. With a key, the script takes the claim
    instead, and one pipeline after the publish stores the receipt and the accepted record, whose
    acceptance time comes from the durable record.
    """
    account_id = caller.user_id
    limits = command_limits(resources.settings, account_id, caller.ip)
    claim: Claim | None = None
    if idempotency_key is None:
        envelope = envelope_for(command, account_id)
        written = _accepted_record(envelope, command.KIND, resources)
        await resources.gate.admit(jti=caller.claims.jti, limits=limits, write=written)
    else:
        print_ = fingerprint(command.KIND, command.model_dump(mode="json"))
        claim = resources.idempotency.claim_for(account_id, validate_key(idempotency_key), print_)
        written = resources.idempotency.claim_write(claim)
        admission = await resources.gate.admit(jti=caller.claims.jti, limits=limits, write=written)
        if not admission.claimed:
            receipt = resources.idempotency.answer(claim, admission.found)
            log.info("intake.idempotent_replay", command_id=receipt.get("command_id"))
            return receipt
    try:
        if vet is not None:
            await vet()
        if claim is not None:
            envelope = await _pinned(command, claim, resources)
        structlog.contextvars.bind_contextvars(command_id=str(envelope.id))
        sent = await _publish(envelope, resources)
    except BaseException:
        # Frees the key for a retry at once, or drops the record of a command that was not accepted.
        await resources.redis.delete(written.key)
        raise
    resources.announcer.announce(accepted_record(sent.placed, account_id, envelope.id, sent.value))
    receipt = receipt_for(envelope.id, command.KIND).model_dump(mode="json")
    if claim is not None:
        record = _accepted_record(envelope, command.KIND, resources)
        async with resources.redis.pipeline(transaction=False) as pipe:
            pipe.set(record.key, record.value, ex=record.ttl_s)
            resources.idempotency.complete(pipe, claim, receipt)
            await pipe.execute()
    audit("command.accepted", result="accepted", kind=command.KIND, account_id=account_id)
    return receipt


async def _pinned(command: Command, claim: Claim, resources: Resources) -> Envelope[Command]:
    """The same id and acceptance time as the key's first attempt: a republished command is a duplicate."""
    try:
        record = await resources.idempotency.pin(claim, command.KIND, utc_now())
    except ProblemError:
        raise
    except Exception as exc:
        log.error("intake.idempotency_record_failed", error=type(exc).__name__)
        raise _unavailable() from exc
    return envelope_for(command, claim.account_id, record.command_id, record.accepted_at)


async def _publish(envelope: Envelope[Command], resources: Resources) -> Sent:
    """Returns once the broker acknowledged the command; 503 if it fails or takes too long."""
    timeout_s = resources.settings.intake_publish_timeout_s
    try:
        return await asyncio.wait_for(resources.commands.publish(envelope), timeout=timeout_s)
    except Exception as exc:
        log.error("intake.publish_failed", error=type(exc).__name__, timeout_s=timeout_s)
        raise _unavailable() from exc
