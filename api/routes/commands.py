"""Command status, polled by the frontend."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter

from api.deps import CurrentUser, ResourcesDep
from api.problems import ProblemError
from schemas.http import CommandStatus

router = APIRouter(prefix="/v1/commands", tags=["commands"])

_NOT_FOUND = ProblemError(404, "Not found", "no such command")


@router.get("/{command_id}", response_model=CommandStatus)
async def command_status(command_id: str, user: CurrentUser, resources: ResourcesDep) -> CommandStatus:
    """The status of one of the caller's commands; 404 for any other."""
    try:
        parsed = uuid.UUID(command_id)
    except ValueError:
        raise _NOT_FOUND from None
    item = await resources.statuses.get(user.user_id, parsed)
    if item is not None and item.get("accepted_at"):
        return CommandStatus.model_validate(item)
    # The intake's record: before the status consumer has seen the command, or while its read of the
    # command topic lags behind the outcome event.
    cached = await resources.redis.get(f"command:{parsed}")
    accepted = json.loads(cached) if cached is not None else None
    if accepted is not None and accepted.get("account_id") != user.user_id:
        accepted = None
    if item is not None:
        return CommandStatus.model_validate({**item, "accepted_at": accepted and accepted["accepted_at"]})
    if accepted is not None:
        return CommandStatus(
            command_id=parsed, kind=accepted["kind"], status="accepted", accepted_at=accepted["accepted_at"]
        )
    raise _NOT_FOUND
