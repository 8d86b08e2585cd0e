"""The web console in Chromium against the real system: a user's whole journey, privacy between users,
markup rendered as text, the console's CSP, phone-sized screens, keyboard use and accessibility."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from infra.settings import Settings
from tests.browser.conftest import DESKTOP, PHONE, Console, open_console
from tests.conftest import RunningSystem
from tests.support.api import PASSWORD
from tests.support.trading import set_price

pytestmark = pytest.mark.integration

MARKUP = '<img src=x onerror="window.__injected=1">'

# Records every status each followed command shows in "Recent commands", in order, so that a test can
# see "accepted" even when the outcome follows within milliseconds.
RECORD_STATUSES = """() => {
  window.__statuses = {};
  const record = () => document.querySelectorAll(".activity li[data-command-id]").forEach((li) => {
    const seen = (window.__statuses[li.dataset.commandId] ||= []);
    if (seen[seen.length - 1] !== li.dataset.status) seen.push(li.dataset.status);
  });
  new MutationObserver(record).observe(document.body,
    { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
}"""


@pytest.fixture
async def console(browser: Browser, system: RunningSystem, screenshots: Path) -> AsyncIterator[Console]:
    context = await browser.new_context(viewport=DESKTOP)
    yield await open_console(context, system.api_url, screenshots)
    await context.close()


async def sign_up(console: Console, username: str) -> None:
    page = console.page
    await console.open()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    await page.evaluate(RECORD_STATUSES)


async def go(console: Console, link: str) -> None:
    await console.page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()
    await expect(console.page.get_by_role("heading", name=link, level=1)).to_be_visible()


async def follow_outcome(console: Console, submit: Any) -> tuple[list[str], str]:
    """Submits with `submit()`; returns the statuses the new command showed and its item's final text."""
    items = console.page.locator(".activity li[data-command-id]")
    before = await items.count()
    await submit()
    await expect(items).to_have_count(before + 1)
    command_id = await items.first.get_attribute("data-command-id")
    item = console.page.locator(f'.activity li[data-command-id="{command_id}"]')
    await expect(item).to_have_attribute("data-status", re.compile("settled|rejected"), timeout=30_000)
    statuses: list[str] = await console.page.evaluate(f"window.__statuses['{command_id}']")
    return statuses, await item.inner_text()


async def cash_command(console: Console, form: str, amount: str) -> tuple[list[str], str]:
    page = console.page
    await page.get_by_label(f"{form} amount (USD)").fill(amount)
    return await follow_outcome(console, page.get_by_role("button", name=form, exact=True).click)


async def order(console: Console, side: str, by: str, value: str, estimate: str) -> tuple[list[str], str]:
    page = console.page
    await page.get_by_label("Search assets by symbol or name").fill("btc")
    await page.get_by_role("button", name="Trade BTC").click()
    await page.get_by_label(side.capitalize(), exact=True).check()
    await page.get_by_label(by).check()
    await page.locator("#order-input").fill(value)
    await expect(page.locator(".estimate")).to_contain_text(estimate)
    return await follow_outcome(console, page.get_by_role("button", name=f"Place {side} order").click)


async def test_journey_register_deposit_trade_withdraw_sign_out(
    console: Console, http: httpx.AsyncClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print(f"\nconsole screenshots: {console.shots}")
    page = console.page
    await console.open()
    await console.check_page("sign-in")
    await sign_up(console, f"web_{uuid.uuid4().hex[:10]}")
    await console.check_page("dashboard-empty")

    await go(console, "Account")
    statuses, text = await cash_command(console, "Deposit", "500.00")
    assert statuses == ["accepted", "settled"], statuses
    assert "Deposit 500.00 USD" in text and "cash now 500.00 USD" in text
    await expect(page.locator(".big")).to_have_text("500.00 USD")  # the balance, updated without a reload

    await set_price(settings.kafka_bootstrap_servers, http, "BTC", "50000.00")
    await go(console, "Trade")
    statuses, text = await order(console, "buy", "Quantity of BTC", "0.002", "Estimated cost: 100.00 USD")
    assert statuses == ["accepted", "settled"], (statuses, text)
    await console.check_page("trade")

    await go(console, "Dashboard")
    positions = page.get_by_role("region", name="Positions")
    await expect(positions.get_by_role("row", name=re.compile("BTC"))).to_contain_text("0.002")
    await expect(page.locator(".figure .big").nth(1)).to_have_text("500.00 USD")  # 400.00 cash + 100.00 BTC
    await expect(page.locator("figure.chart canvas")).to_have_count(1)
    assert await page.get_by_role("img", name=re.compile("Portfolio value over time")).count() == 1
    await console.check_page("dashboard")
    # Live prices: from the event stream where the server has one, else by refreshing the asset list.
    streamed = any(path.startswith("/v1/stream?ticket=") for _, path in console.answers)
    polled = (404, "/v1/auth/stream-ticket") in console.answers and any(
        path == "/v1/assets?limit=500" for _, path in console.answers
    )
    assert streamed or polled, console.answers

    await go(console, "Trade")
    statuses, _ = await order(console, "sell", "Amount in USD", "50.00", "Estimated proceeds: 50.00 USD")
    assert statuses == ["accepted", "settled"]

    await go(console, "Account")
    statuses, _ = await cash_command(console, "Withdraw", "100.00")
    assert statuses == ["accepted", "settled"]
    statuses, text = await cash_command(console, "Withdraw", "4000.00")
    assert statuses == ["accepted", "rejected"]
    assert "rejected: insufficient funds" in text
    await expect(page.locator(".big")).to_have_text("350.00 USD")
    history = page.get_by_role("region", name="Transactions")
    await expect(history.get_by_role("row")).to_have_count(6)  # the header and five events
    await expect(history).to_contain_text("insufficient funds")
    await console.check_page("account")

    await go(console, "Orders")
    orders = page.get_by_role("region", name="Orders")
    await expect(orders.get_by_role("link")).to_have_text(["sell 0.001 BTC", "buy 0.002 BTC"])
    await console.check_page("orders")
    await orders.get_by_role("link", name="buy 0.002 BTC").click()
    await expect(page.locator(".details")).to_contain_text("100.00 USD")
    await console.check_page("order")

    await page.set_viewport_size(PHONE)
    await go(console, "Dashboard")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await console.check_page("dashboard-phone")
    await page.set_viewport_size(DESKTOP)

    await go(console, "Profile")
    await console.check_page("profile")
    assert await page.evaluate("localStorage.length") == 0
    assert await page.evaluate("sessionStorage.getItem('ledgerflow.token')")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('ledgerflow.token')") is None
    await page.reload()
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()


async def test_a_second_user_sees_none_of_the_first_users_data(
    console: Console, browser: Browser, system: RunningSystem, screenshots: Path
) -> None:
    first = console
    await sign_up(first, f"first_{uuid.uuid4().hex[:10]}")
    await go(first, "Account")
    await cash_command(first, "Deposit", "75.00")
    token = await first.page.evaluate("sessionStorage.getItem('ledgerflow.token')")

    context = await browser.new_context(viewport=DESKTOP)
    try:
        second = await open_console(context, system.api_url, screenshots)
        await sign_up(second, f"second_{uuid.uuid4().hex[:10]}")
        assert await second.page.evaluate("sessionStorage.getItem('ledgerflow.token')") != token
        await expect(second.page.locator(".figure .big").first).to_have_text("0.00 USD")
        await expect(second.page.get_by_text("No positions yet.")).to_be_visible()
        await go(second, "Account")
        await expect(second.page.locator(".big")).to_have_text("0.00 USD")
        await expect(second.page.get_by_text("No transactions yet.")).to_be_visible()
        await expect(
            second.page.get_by_text("Deposits, withdrawals and orders you send appear here.")
        ).to_be_visible()
        await go(second, "Orders")
        await expect(second.page.get_by_text("No orders yet.")).to_be_visible()
        assert second.problems == []
    finally:
        await context.close()


async def test_markup_in_a_username_and_an_asset_search_is_shown_as_text(console: Console) -> None:
    page = console.page
    await console.open()
    await page.get_by_label("Username").fill(MARKUP)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("alert")).to_contain_text("username")  # the API refuses such a name
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("invalid username or password")
    assert await page.get_by_label("Username").input_value() == MARKUP

    await sign_up(console, f"markup_{uuid.uuid4().hex[:10]}")
    await go(console, "Trade")
    await page.get_by_label("Search assets by symbol or name").fill(MARKUP)
    await expect(page.get_by_role("status").filter(has_text="No asset matches")).to_have_text(
        f"No asset matches “{MARKUP}”."
    )
    assert await page.locator("main img").count() == 0
    assert await page.evaluate("window.__injected") is None
    assert console.problems == []


async def test_signing_in_and_depositing_by_keyboard_alone(console: Console) -> None:
    page = console.page
    username = f"keys_{uuid.uuid4().hex[:10]}"

    async def tab_to(selector: str) -> None:
        for _ in range(30):
            await page.keyboard.press("Tab")
            if await page.evaluate(f"document.activeElement.matches({selector!r})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    await console.open()
    await tab_to("#username")
    await page.keyboard.type(username)
    await tab_to("#password")
    await page.keyboard.type(PASSWORD)
    await tab_to("button.secondary")  # Create account
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    # A page moves the focus to its title once it has rendered (PageTitle's effect, which runs after the
    # paint): tabbing before that would be undone by it, so the next Tab starts from the title.
    await expect(page.locator("#page-title")).to_be_focused()
    await page.evaluate(RECORD_STATUSES)

    await tab_to('nav a[href="#/account"]')
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()
    await expect(page.locator("#page-title")).to_be_focused()

    async def deposit_by_keyboard() -> None:
        await tab_to("#deposit-amount")
        await page.keyboard.type("12.50")
        await page.keyboard.press("Enter")

    statuses, _ = await follow_outcome(console, deposit_by_keyboard)
    assert statuses == ["accepted", "settled"]
    await expect(page.locator(".big")).to_have_text("12.50 USD")


async def test_the_console_has_its_own_csp_and_the_api_keeps_its_own(http: httpx.AsyncClient) -> None:
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    script = await http.get("/web/js/app.js")
    assert script.status_code == 200
    assert script.headers["content-security-policy"] == csp
    assert "<script>" not in page.text  # no inline script: the page loads /web/js/app.js only
    api = await http.get("/v1/health/live")
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert (await http.get("/web/../app.py")).status_code == 404


@pytest.mark.parametrize(
    ("side", "mode", "text", "price", "expected"),
    [
        # A buy's cost rounds up to the cent, a sell's proceeds down, exactly as trading settles them.
        ("buy", "quantity", "0.00000001", "65000.12", {"quantity": "0.00000001", "cash": "0.01"}),
        ("sell", "quantity", "0.00000001", "65000.12", {"quantity": "0.00000001", "cash": "0.00"}),
        ("buy", "quantity", "0.1", "0.3", {"quantity": "0.1", "cash": "0.03"}),
        # By USD amount: the quantity is cut to 8 places, so the cost never exceeds the amount.
        ("buy", "amount", "100", "3", {"quantity": "33.33333333", "cash": "100.00"}),
        ("buy", "amount", "10.00", "64123.45", {"quantity": "0.00015594", "cash": "10.00"}),
        ("buy", "quantity", "1e3", "5", {"error": "enter a plain decimal number, like 0.5"}),
        ("buy", "quantity", "0.123456789", "5", {"error": "at most 8 decimal places"}),
        ("buy", "amount", "0.00000001", "64123.45", {"error": "the quantity must be more than 0"}),
        ("buy", "quantity", "1", None, {"error": "this asset has no price yet"}),
    ],
)
async def test_order_estimates_are_exact_decimals(
    console: Console, side: str, mode: str, text: str, price: str | None, expected: dict[str, str]
) -> None:
    await console.open()
    estimate = await console.page.evaluate(
        "([side, mode, text, price]) => import('/web/js/estimate.js')"
        ".then((m) => m.estimateOrder(side, mode, text, price))",
        [side, mode, text, price],
    )
    assert estimate == expected
