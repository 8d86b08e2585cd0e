"""Every app serves Prometheus metrics on its own port, and real traffic moves the series that describe
it: a settled deposit, a refused POST, a malformed record and an ignored tick."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import httpx
from prometheus_client.parser import text_string_to_metric_families

from infra.settings import Settings
from producers.prices.feed import tick_envelope
from schemas.topics import DEPOSIT_COMMANDS, PRICES
from schemas.trading import PriceTick
from tests.conftest import NOT_STARTED_IN_TESTS, RunningSystem
from tests.support.api import ApiUser
from tests.support.kafka import send_raw
from tests.support.metrics import sample_value

Labels = dict[str, str]


def _families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


async def _scrape(client: httpx.AsyncClient, url: str, within_s: float = 30.0) -> str:
    # The system is shared: an earlier test may have just restarted an app, whose port opens once it is up.
    deadline = time.monotonic() + within_s
    while True:
        try:
            response = await client.get(url)
            break
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    assert response.status_code == 200, (url, response.status_code)
    return response.text


async def test_each_app_serves_metrics_and_a_settled_deposit_moves_them(
    system: RunningSystem, user: ApiUser, settings: Settings
) -> None:
    urls = {name: url for name, url in system.metrics_urls.items() if name not in NOT_STARTED_IN_TESTS}
    assert {"api", "ledger", "trading", "portfolio", "prices"} <= set(urls)
    async with httpx.AsyncClient(timeout=10) as client:
        before = {name: await _scrape(client, url) for name, url in urls.items()}

        settled = await user.wait_for(await user.deposit("7.00"))
        assert settled["status"] == "settled"
        refused = await user.post("/v1/deposits", {"amount": "-1"})
        assert refused.status_code == 422
        bootstrap = settings.kafka_bootstrap_servers
        await send_raw(bootstrap, DEPOSIT_COMMANDS, user.account_id, [b"{not json"])
        await send_raw(
            bootstrap, PRICES, "NOSUCHASSET", [tick_envelope("NOSUCHASSET", Decimal("1")).to_bytes()]
        )

        expected = {
            # (app, series, labels): by how much it must have grown
            ("ledger", "ledgerflow_consumer_outcomes_total", (("kind", "Deposit"), ("result", "settled"))): 1,
            ("ledger", "ledgerflow_consumer_dead_letters_total", (("reason", "invalid_json"),)): 1,
            ("ledger", "ledgerflow_consumer_settle_batch_messages_count", ()): 1,
            ("ledger", "ledgerflow_consumer_fetch_records_count", ()): 2,
            ("ledger", "faststream_received_processed_messages_total", (("app_name", "ledger"),)): 2,
            (
                "prices",
                "ledgerflow_consumer_outcomes_total",
                (("kind", PriceTick.TYPE), ("result", "ignored")),
            ): 1,
            ("api", "ledgerflow_intake_commands_total", (("kind", "deposit"), ("outcome", "accepted"))): 1,
            ("api", "ledgerflow_intake_commands_total", (("kind", "deposit"), ("outcome", "rejected"))): 1,
        }
        deadline = time.monotonic() + 30
        while True:
            after = {name: await _scrape(client, url) for name, url in urls.items()}
            short = {
                key: sample_value(after[key[0]], key[1], **dict(key[2]))
                - sample_value(before[key[0]], key[1], **dict(key[2]))
                for key, grown in expected.items()
                if sample_value(after[key[0]], key[1], **dict(key[2]))
                - sample_value(before[key[0]], key[1], **dict(key[2]))
                < grown
            }
            if not short or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    assert not short, f"series that did not move enough: {short}"

    # Lag per partition, from the highwater the consumer saw: it has caught up with what it settled.
    assert sample_value(after["ledger"], "ledgerflow_consumer_lag_records", topic=DEPOSIT_COMMANDS) == 0
    for name in ("ledger", "trading", "portfolio", "prices"):
        families = _families(after[name])
        assert {
            "ledgerflow_consumer_outcomes",
            "ledgerflow_consumer_retries",
            "ledgerflow_consumer_oldest_unsettled_seconds",
            "process_cpu_seconds",
        } <= families, (name, sorted(families))
        assert sample_value(after[name], "ledgerflow_consumer_oldest_unsettled_seconds") < 60
