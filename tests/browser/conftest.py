"""The console in a real browser: Debian's Chromium driven by Playwright, against the system the suite
starts (tests/conftest.py). Playwright's own browser download is not used (and not reachable here)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    ViewportSize,
    async_playwright,
)

from infra.local.install import chromium_binary

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium's own background connections are refused on a closed network, and it stalls.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SKIP_NO_CHROMIUM = (
    "browser tests skipped: no Chromium (`chromium` is not on PATH and `apt-get install -y chromium` "
    "was not possible: it needs root and a reachable Debian mirror)"
)
AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".cache" / "screenshots" / "console"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1200, "height": 900}


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    found = chromium_binary()
    if found is None:
        pytest.skip(SKIP_NO_CHROMIUM)
    return found


@pytest.fixture(scope="session")
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Iterator[Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    yield SCREENSHOTS


@dataclass
class Console:
    """One browser tab on the console, recording what must never happen: script errors, CSP refusals,
    dialogs (an injected `alert`) and server errors. (4xx answers are the tests' business: some are
    provoked on purpose, and a server without the event stream answers its ticket with 404.)"""

    page: Page
    base_url: str
    shots: Path
    problems: list[str] = field(default_factory=list)
    answers: list[tuple[int, str]] = field(default_factory=list)  # (status, path and query) of each request

    async def open(self, route: str = "") -> None:
        await self.page.goto(f"{self.base_url}/{route}")

    async def accessibility_violations(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations on the page as it is now."""
        # Evaluated through the DevTools protocol: the page's CSP, which allows only its own scripts,
        # does not apply, and need not be loosened for the test.
        if not await self.page.evaluate("typeof window.axe !== 'undefined'"):
            await self.page.evaluate(AXE_SOURCE)
        result = await self.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}
            for v in result["violations"]
            if v["impact"] in {"serious", "critical"}
        ]

    async def check_page(self, name: str) -> None:
        """Screenshot, then no serious or critical accessibility violation, and nothing went wrong."""
        await self.page.screenshot(path=self.shots / f"{name}.png", full_page=True)
        violations = await self.accessibility_violations()
        assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"
        assert self.problems == [], f"{name}: {self.problems}"


async def open_console(context: BrowserContext, base_url: str, shots: Path) -> Console:
    page = await context.new_page()
    console = Console(page, base_url, shots)

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            console.problems.append(f"CSP: {message.text}")

    def on_response(response: Response) -> None:
        console.answers.append((response.status, response.url.removeprefix(base_url)))
        if response.status >= 500:
            console.problems.append(f"{response.status} {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: console.problems.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: console.problems.append(f"dialog: {dialog.message}"))
    return console
