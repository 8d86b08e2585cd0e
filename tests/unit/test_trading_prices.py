"""The price feed: a bounded random walk in exact decimals, recordings, and the latest-price rule."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.prices.handlers import PricePorts, record_price
from infra.data import load_assets
from producers.prices.feed import tick_envelope
from producers.prices.walk import RandomWalk, next_price, parse_recording, price_quantum
from schemas.trading import PriceTick


def test_the_shipped_assets_are_at_least_fifty_real_ones() -> None:
    assets = load_assets()
    assert len(assets) >= 50
    assert len({a.symbol for a in assets}) == len(assets)
    assert {"BTC", "ETH", "SOL"} <= {a.symbol for a in assets}


@given(
    st.decimals(min_value=Decimal("0.00001"), max_value=Decimal("100000"), places=5),
    st.lists(st.integers(min_value=-500, max_value=500), max_size=200),
)
def test_the_walk_stays_in_its_band(start: Decimal, steps: list[int]) -> None:
    band = Decimal("0.5")
    price = start
    for bps in steps:
        price = next_price(price, start, bps, band)
        assert price > 0
        assert start * (1 - band) - price_quantum(start) <= price <= start * (1 + band) + price_quantum(start)
        assert price == price.quantize(price_quantum(start))


def test_a_seeded_walk_is_deterministic() -> None:
    assets = load_assets()[:5]
    a, b = RandomWalk(assets, 50, Decimal("0.5"), seed=7), RandomWalk(assets, 50, Decimal("0.5"), seed=7)
    assert [a.step() for _ in range(10)] == [b.step() for _ in range(10)]


def test_recordings_are_parsed_strictly() -> None:
    rows = csv.DictReader(io.StringIO("elapsed_s,asset,price\n0,btc,64250.00\n1.5,ETH,3150\n"))
    ticks = list(parse_recording(rows))
    assert [(t.elapsed_s, t.asset, t.price) for t in ticks] == [
        (0.0, "BTC", Decimal("64250.00")),
        (1.5, "ETH", Decimal("3150")),
    ]
    with pytest.raises(ValueError, match="line 2"):
        list(parse_recording(csv.DictReader(io.StringIO("elapsed_s,asset,price\n0,BTC,1e5\n"))))


class _Store:
    def __init__(self) -> None:
        self.latest: dict[str, PriceTick] = {}

    async def record_tick(self, tick: PriceTick) -> bool:
        current = self.latest.get(tick.asset)
        if current is not None and current.at >= tick.at:
            return False
        self.latest[tick.asset] = tick
        return True


async def test_only_known_assets_are_recorded() -> None:
    store = _Store()
    ports = PricePorts(store=store, known_assets={"BTC"})
    assert await record_price(tick_envelope("BTC", Decimal("1")), ports)
    assert not await record_price(tick_envelope("NOPE", Decimal("1")), ports)
    older = tick_envelope("BTC", Decimal("2"))
    stale = older.model_copy(
        update={"payload": PriceTick(asset="BTC", price=Decimal(2), at=datetime.now(UTC) - timedelta(1))}
    )
    assert not await record_price(stale, ports)
    assert store.latest["BTC"].price == Decimal("1")
