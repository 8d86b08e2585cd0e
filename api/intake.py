"""Accepting a command: idempotency, publish (acknowledged by Kafka), then the 202 receipt."""

from __future__ import annotations

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
from schemas.http import CommandReceipt

log = structlog.get_logger(__name__)


def receipt_for(command_id: uuid.UUID, kind: str) -> CommandReceipt:
    return CommandReceipt(command_id=command_id, kind=kind, status_url=f"/v1/commands/{command_id}")


async def submit(
    command: Command, account_id: str, resources: Resources, idempotency_key: str | None
) -> dict[str, Any]:
    claim: Claim | None = None
    if idempotency_key is not None:
        print_ = fingerprint(command.KIND, command.model_dump(mode="json"))
        claimed = await resources.idempotency.claim(account_id, validate_key(idempotency_key), print_)
        if not isinstance(claimed, Claim):
            log.info("intake.idempotent_replay", command_id=claimed.get("command_id"))
            return claimed
        claim = claimed
    envelope = envelope_for(command, account_id)
    structlog.contextvars.bind_contextvars(command_id=str(envelope.id))
    try:
        await resources.commands.publish(envelope)
    except Exception as exc:
        if claim is not None:
            await resources.idempotency.release(claim)
        log.error("intake.publish_failed", error=type(exc).__name__)
        raise ProblemError(
            503,
            "Service unavailable",
            "the command could not be queued; retry later",
            headers={"Retry-After": "2"},
        ) from exc
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
