"""A command's status as clients and admins see it: the intake's accepted record until the settlement's
outcome record exists, then that."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from api.resources import Resources
from schemas.http import CommandStatus


async def find_command(
    resources: Resources, command_id: uuid.UUID, account_id: str | None
) -> tuple[str, CommandStatus] | None:
    """The command's account and status; None if unknown. `account_id` confines the lookup to that
    account's commands (a user's own); None looks in every account (an admin's lookup)."""
    cached = await resources.redis.get(f"command:{command_id}")
    accepted: dict[str, Any] | None = json.loads(cached) if cached is not None else None
    if account_id is not None and accepted is not None and accepted.get("account_id") != account_id:
        accepted = None
    owner = account_id or (str(accepted["account_id"]) if accepted is not None else None)
    if owner is None:
        owner = await resources.statuses.owner(command_id)
    if owner is None:
        return None
    accepted_at = datetime.fromisoformat(accepted["accepted_at"]) if accepted is not None else None
    settled = await resources.statuses.settled(owner, command_id, accepted_at)
    if settled is not None:
        if settled.accepted_at is None and accepted is not None:
            # Settled before outcome records kept the acceptance time.
            settled = settled.model_copy(update={"accepted_at": accepted["accepted_at"]})
        return owner, settled
    if accepted is None:
        return None
    return owner, CommandStatus(
        command_id=command_id, kind=accepted["kind"], status="accepted", accepted_at=accepted["accepted_at"]
    )
