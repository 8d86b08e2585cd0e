"""Reading `GET /v1/stream` as a browser's EventSource would: events pumped into a queue in the
background, so a test can wait for the next one with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse


@dataclass
class Stream:
    response: httpx.Response
    _events: asyncio.Queue[ServerSentEvent] = field(default_factory=asyncio.Queue)

    async def next(self, event: str = "command", timeout_s: float = 30) -> ServerSentEvent:
        """The next event of that type (others are skipped)."""
        async with asyncio.timeout(timeout_s):
            while True:
                sse = await self._events.get()
                if sse.event == event:
                    return sse

    async def command(self, timeout_s: float = 30) -> tuple[str, dict[str, Any]]:
        """The next command event: its id and its status."""
        sse = await self.next("command", timeout_s)
        data: dict[str, Any] = json.loads(sse.data)
        return sse.id, data

    async def until(self, command_id: str, status: str, timeout_s: float = 30) -> tuple[str, dict[str, Any]]:
        while True:
            event_id, data = await self.command(timeout_s)
            if data["command_id"] == command_id and data["status"] == status:
                return event_id, data

    def received(self) -> list[ServerSentEvent]:
        """What arrived and was not read yet, without waiting."""
        found = []
        while not self._events.empty():
            found.append(self._events.get_nowait())
        return found


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, *, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    async with aconnect_sse(
        client, "GET", "/v1/stream", headers=dict(headers or {}), params=params
    ) as source:
        stream = Stream(source.response)
        if source.response.status_code != 200:
            yield stream
            return

        async def pump() -> None:
            async for sse in source.aiter_sse():
                await stream._events.put(sse)

        task = asyncio.create_task(pump())
        try:
            yield stream
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task


async def ticket(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    response = await client.post("/v1/auth/stream-ticket", headers=auth)
    assert response.status_code == 201, response.text
    value: str = response.json()["ticket"]
    return value
