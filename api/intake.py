"""Accepting a command: idempotency, publish (acknowledged by Kafka, within a bounded wait), the 202."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import structlog

from api.idempotency import Claim, fingerprint, validate_key
from api.problems import ProblemError
from api.resources import Resources
from infra.audit import audit
from producers.commands import envelope_for
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


async def submit(
    command: Command, account_id: str, resources: Resources, idempotency_key: str | None
) -> dict[str, Any]:
    claim: Claim | None = None
    if idempotency_key is None:
        envelope = envelope_for(command, account_id)
    else:
        print_ = fingerprint(command.KIND, command.model_dump(mode="json"))
        claimed = await resources.idempotency.claim(account_id, validate_key(idempotency_key), print_)
        if not isinstance(claimed, Claim):
            log.info("intake.idempotent_replay", command_id=claimed.get("command_id"))
            return claimed
        claim = claimed
        try:
            record = await resources.idempotency.pin(claim, command.KIND, utc_now())
        except ProblemError:
            await resources.idempotency.release(claim)
            raise
        except Exception as exc:
            await resources.idempotency.release(claim)
            log.error("intake.idempotency_record_failed", error=type(exc).__name__)
            raise _unavailable() from exc
        # The same id and acceptance time as the first attempt: a republished command is a duplicate.
        envelope = envelope_for(command, account_id, record.command_id, record.accepted_at)
    structlog.contextvars.bind_contextvars(command_id=str(envelope.id))
    try:
        await _publish(envelope, resources)
    except BaseException:
        if claim is not None:
            await resources.idempotency.release(claim)
        raise
    receipt = receipt_for(envelope.id, command.KIND).model_dump(mode="json")
    accepted = {
        "account_id": account_id,
        "kind": command.KIND,
        "accepted_at": envelope.occurred_at.isoformat(),
    }
    # So that a poll straight after the 202 finds the command before the status consumer has seen it.
    await resources.redis.set(
        f"command:{envelope.id}", json.dumps(accepted), ex=resources.settings.command_status_ttl_seconds
    )
    if claim is not None:
        await resources.idempotency.complete(claim, receipt)
    audit("command.accepted", result="accepted", kind=command.KIND, account_id=account_id)
    return receipt


async def _publish(envelope: Envelope[Command], resources: Resources) -> None:
    """Returns once the broker acknowledged the command; 503 if it fails or takes too long."""
    timeout_s = resources.settings.intake_publish_timeout_s
    try:
        await asyncio.wait_for(resources.commands.publish(envelope), timeout=timeout_s)
    except Exception as exc:
        log.error("intake.publish_failed", error=type(exc).__name__, timeout_s=timeout_s)
        raise _unavailable() from exc
