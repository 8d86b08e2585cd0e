"""The web console (`api/web/`): static files served by the API itself, `GET /` answering its page.

The console's responses carry a Content-Security-Policy of their own, strict but one that lets the page
load its own scripts, styles and API: `SecurityHeaders` adds its headers only where a response has none,
so every other response keeps the API's `default-src 'none'`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEB_DIR = Path(__file__).parent / "web"

CONSOLE_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Revalidated on each load (StaticFiles answers 304 to a matching ETag), so a new release shows at once.
CONSOLE_HEADERS = {"content-security-policy": CONSOLE_CSP, "cache-control": "no-cache"}


class _WithHeaders:
    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_console(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        """The console's single page."""
        return FileResponse(WEB_DIR / "index.html", headers=CONSOLE_HEADERS)

    app.mount("/web", _WithHeaders(StaticFiles(directory=WEB_DIR), CONSOLE_HEADERS), name="web")
