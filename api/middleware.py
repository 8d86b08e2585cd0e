"""ASGI layers in front of every route: observation (request id, metrics, log context), security
headers, request size (413) and media type (415).

Written as plain ASGI so that an oversized body is refused while it streams in, before any of it is
buffered, so that the headers are on every response, errors included, and because Starlette's
`BaseHTTPMiddleware` (`@app.middleware("http")`) costs a task and a memory stream per request.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import count_intake
from api.problems import PROBLEM_JSON
from infra.telemetry import current_trace_id

# Counters and histograms need nothing more when the workers share their metrics (api/metrics.py).
REQUESTS = Counter("ledgerflow_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("ledgerflow_http_request_seconds", "HTTP request latency", ["method", "route"])

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cache-control", b"no-store"),
    (b"permissions-policy", b"interest-cohort=()"),
)
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class Observe:
    """A request id (`X-Request-Id`), the log context (with the trace id of the request's span) and the
    request's count and latency by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        request_id = str(uuid.uuid4())
        method: str = scope["method"]
        path: str = scope["path"]
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        client = scope.get("client")
        structlog.contextvars.bind_contextvars(
            service="api",
            request_id=request_id,
            # FastAPI's instrumentation, outside this layer, started the request's span.
            trace_id=current_trace_id(),
            path=path,
            client_ip=client[0] if client else None,
        )
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # The router put the matched route in the scope: its template keeps the labels few.
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - started)
            count_intake(method, path, status)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _problem(
    send: Send, status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> None:
    problem: dict[str, object] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors is not None:
        problem["errors"] = errors
    body = json.dumps(problem).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse(
    scope: Scope,
    send: Send,
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
) -> None:
    """The guard's own answers never reach `Observe`: the intake's count of them is taken here."""
    count_intake(scope["method"], scope["path"], status)
    await _problem(send, status, title, detail, errors)


class RequestGuard:
    """413 for a body over `max_body_bytes`, 415 for a body that is not JSON."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._limit = f"the limit is {max_body_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(scope, send, 400, "Bad request", "invalid Content-Length")
                return
            if int(declared) > self.max_body_bytes:
                await _refuse(
                    scope, send, 413, "Payload too large", f"the limit is {self.max_body_bytes} bytes"
                )
                return
        has_body = declared not in (None, b"0") or b"transfer-encoding" in headers
        if has_body and not _is_json(headers.get(b"content-type", b"")):
            await _refuse(scope, send, 415, "Unsupported media type", "send application/json")
            return

        # Read the body here, never more than the limit: the app then gets it in one piece.
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_bytes:
                await _refuse(
                    scope, send, 413, "Payload too large", f"the limit is {self.max_body_bytes} bytes"
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        duplicate = _duplicate_key(body)
        if duplicate is not None:
            await _refuse(
                scope,
                send,
                422,
                "Validation failed",
                "a JSON object repeats a key",
                errors=[{"field": duplicate, "message": "duplicate key: the request is ambiguous"}],
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _duplicate_key(body: bytes) -> str | None:
    """The first key a JSON object repeats; parsers disagree on which value wins, so we refuse both."""
    try:
        json.loads(body, object_pairs_hook=_reject_duplicates)
    except _DuplicateKey as dup:
        return dup.key[:100]
    except (ValueError, RecursionError):
        return None  # not JSON we can read: the app's own validation answers that
    return None


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))
