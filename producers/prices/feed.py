"""The price feed loops: publish `PriceTick` envelopes to `prices`, from a random walk or a recording."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

import structlog

from infra.retry import retry_transient
from producers.prices.walk import RandomWalk, RecordedTick
from schemas.envelope import Envelope, utc_now
from schemas.topics import PRICES
from schemas.trading import MARKET_ACCOUNT, PriceTick

log = structlog.get_logger(__name__)


class KeyedSender(Protocol):
    async def send(self, topic: str, key: str, value: bytes) -> None: ...


def tick_envelope(asset: str, price: Decimal) -> Envelope[PriceTick]:
    tick_id = uuid.uuid4()
    now = utc_now()
    return Envelope[PriceTick](
        id=tick_id,
        type=PriceTick.TYPE,
        version=PriceTick.VERSION,
        occurred_at=now,
        account_id=MARKET_ACCOUNT,
        correlation_id=tick_id,
        payload=PriceTick(asset=asset, price=price, at=now),
    )


async def publish_tick(sender: KeyedSender, asset: str, price: Decimal) -> None:
    # Keyed by asset: one asset's ticks stay in order.
    envelope = tick_envelope(asset, price)
    await retry_transient(lambda: sender.send(PRICES, asset, envelope.to_bytes()))


async def run_random_walk(sender: KeyedSender, walk: RandomWalk, interval_s: float) -> None:
    while True:
        started = time.monotonic()
        prices = walk.step()
        await asyncio.gather(*(publish_tick(sender, asset, price) for asset, price in prices.items()))
        log.debug("prices.published", ticks=len(prices))
        await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))


async def replay(sender: KeyedSender, ticks: Sequence[RecordedTick], speed: float) -> int:
    """Publishes the recording with its original spacing divided by `speed`; `at` is the time of
    publishing, so that a second replay is newer than the first and is not dropped as stale."""
    began = time.monotonic()
    for tick in ticks:
        delay = tick.elapsed_s / speed - (time.monotonic() - began)
        if delay > 0:
            await asyncio.sleep(delay)
        await publish_tick(sender, tick.asset, tick.price)
    log.info("prices.replayed", ticks=len(ticks))
    return len(ticks)
