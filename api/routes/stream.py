"""Live status: stream tickets and the server-sent event stream of a user's commands and prices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import APIRouter, Header
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.command_status import live_status
from api.deps import CurrentUser, ResourcesDep, StreamUser
from api.live.cursor import Cursor, UnreadableCursor
from api.live.hub import LiveRecord, SubscriberOverflow
from api.problems import field_error
from api.resources import Resources

log = structlog.get_logger(__name__)
router = APIRouter(tags=["live"])

# A send that takes longer than this (a client that stopped reading) ends the stream.
_SEND_TIMEOUT_S = 30.0


class StreamTicket(BaseModel):
    ticket: str
    expires_in: int


@router.post("/v1/auth/stream-ticket", status_code=201, response_model=StreamTicket)
async def stream_ticket(user: CurrentUser, resources: ResourcesDep) -> StreamTicket:
    """A short-lived, single-use ticket that opens `GET /v1/stream?ticket=` (for `EventSource`)."""
    tickets = resources.stream_tickets
    return StreamTicket(ticket=await tickets.issue(user), expires_in=tickets.ttl_s)


@router.get("/v1/stream", response_class=EventSourceResponse)
async def stream(
    account_id: StreamUser,
    resources: ResourcesDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """`event: command` for each status change of the caller's commands, `event: price` for each tick;
    with `Last-Event-ID`, first what the caller missed since that event."""
    try:
        cursor = None if last_event_id is None else Cursor.parse(last_event_id.strip())
    except UnreadableCursor as exc:
        raise field_error("Last-Event-ID", str(exc)) from exc
    return EventSourceResponse(
        _events(resources, account_id, cursor),
        ping=resources.settings.stream_heartbeat_s,
        send_timeout=_SEND_TIMEOUT_S,
    )


async def _events(
    resources: Resources, account_id: str, cursor: Cursor | None
) -> AsyncIterator[ServerSentEvent]:
    hub = resources.live
    with hub.subscribe(account_id) as subscription:
        # Taken together with the subscription (no await in between): every record is either in the
        # window already or will reach the subscription, and the cursor drops what is in both.
        backlog = hub.recent(account_id)
        if cursor is None:
            cursor, backlog = Cursor.after(backlog), []
        for record in backlog:
            event = await _command_event(resources, record, cursor)
            if event is not None:
                yield event
        while True:
            try:
                record = await subscription.next()
            except SubscriberOverflow:
                log.warning("live.stream_overflow", account_id=account_id)
                return
            if record.kind == "price":
                yield ServerSentEvent(event="price", data=record.value.decode())
                continue
            event = await _command_event(resources, record, cursor)
            if event is not None:
                yield event


async def _command_event(resources: Resources, record: LiveRecord, cursor: Cursor) -> ServerSentEvent | None:
    """The record's status change, with the cursor past it as its id; None if already sent or if there
    is nothing to send (the cursor still moves past it)."""
    if not cursor.is_new(record):
        return None
    cursor.advance(record)
    status = await live_status(resources, resources.live, record)
    if status is None:
        return None
    return ServerSentEvent(event="command", id=str(cursor), data=status.model_dump_json())
