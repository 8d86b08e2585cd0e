"""Command status, polled (or long-polled with `?wait=`) by the frontend."""

from __future__ import annotations

import uuid
from typing import Annotated, Final

from fastapi import APIRouter, Query

from api.command_status import await_command
from api.deps import CurrentUser, ResourcesDep
from api.problems import ProblemError
from schemas.http import CommandStatus

router = APIRouter(prefix="/v1/commands", tags=["commands"])

_NOT_FOUND = ProblemError(404, "Not found", "no such command")
# The contract's bound on a long poll, in seconds.
LONG_POLL_MAX_S: Final = 30


@router.get("/{command_id}", response_model=CommandStatus)
async def command_status(
    command_id: str,
    user: CurrentUser,
    resources: ResourcesDep,
    wait: Annotated[
        float,
        Query(ge=0, le=LONG_POLL_MAX_S, allow_inf_nan=False, description="seconds to wait for an outcome"),
    ] = 0,
) -> CommandStatus:
    """The status of one of the caller's commands (with `wait`, as soon as it is terminal or after
    `wait` seconds); 404 for any other."""
    try:
        parsed = uuid.UUID(command_id)
    except ValueError:
        raise _NOT_FOUND from None
    found = await await_command(resources, resources.live, parsed, user.user_id, wait)
    if found is None:
        raise _NOT_FOUND
    return found[1]
