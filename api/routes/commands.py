"""Command status, polled by the frontend."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.command_status import find_command
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
    found = await find_command(resources, parsed, user.user_id)
    if found is None:
        raise _NOT_FOUND
    return found[1]
