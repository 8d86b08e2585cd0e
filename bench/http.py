"""A small HTTP/1.1 client on asyncio streams: keep-alive connections in a pool, JSON bodies, no
redirects, no TLS. It costs a fraction of httpx's CPU, so the load generator leaves the box to the
system under test."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any


class HttpError(RuntimeError):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        """Send a request (its head already formatted, ending in the blank line) and read the answer."""
        for attempt in (1, 2):
            fresh = self._writer is None
            if fresh:
                self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
            assert self._reader is not None and self._writer is not None
            try:
                self._writer.write(head + body)
                return await self._read(self._reader)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                self.close()
                # A kept-alive connection the server closed meanwhile: try once on a new one.
                if fresh or attempt == 2:
                    raise HttpError(f"connection failed: {error!r}") from error
        raise AssertionError("unreachable")

    async def _read(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 "):
            raise HttpError(f"not an HTTP/1.1 answer: {head[:40]!r}")
        status = int(head[9:12])
        lowered = head.lower()
        length = _header(lowered, b"content-length")
        if length is not None:
            body = await reader.readexactly(int(length))
        elif _header(lowered, b"transfer-encoding") == b"chunked":
            body = await _read_chunked(reader)
        else:
            body = b""
        if _header(lowered, b"connection") == b"close":
            self.close()
        return status, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _header(lowered_head: bytes, name: bytes) -> bytes | None:
    start = lowered_head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    return lowered_head[start : lowered_head.index(b"\r\n", start)].strip()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers expected
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class HttpClient:
    """Up to `connections` kept-alive connections to one server; a request waits for a free one."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        self.host = host
        self.port = port
        self._all = [Connection(host, port) for _ in range(connections)]
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()
        for connection in self._all:
            self._idle.put_nowait(connection)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        connection = await self._idle.get()
        try:
            yield connection
        finally:
            self._idle.put_nowait(connection)

    def head(
        self, method: str, path: str, body_length: int, token: str | None = None, **headers: str
    ) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        if body_length or method == "POST":
            lines += ["Content-Type: application/json", f"Content-Length: {body_length}"]
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def send(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        async with self._connection() as connection:
            return await connection.request(head, body)

    async def post_json(self, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        raw = json.dumps(body).encode()
        status, answer = await self.send(self.head("POST", path, len(raw), token), raw)
        return status, json.loads(answer) if answer else None

    async def get_json(self, path: str, token: str | None = None) -> tuple[int, Any]:
        status, answer = await self.send(self.head("GET", path, 0, token))
        return status, json.loads(answer) if answer else None

    def close(self) -> None:
        for connection in self._all:
            connection.close()
