"""A bounded random walk of prices, in exact decimals, and the parsing of a recorded price CSV."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from schemas.money import parse_decimal_string
from schemas.trading import AssetInfo, is_symbol

_BPS = Decimal(10_000)


def price_quantum(start: Decimal) -> Decimal:
    """About six significant digits, never fewer than 2 or more than 8 decimal places: a price near 64,000
    moves in cents, one near 0.00001 in hundred-millionths."""
    places = min(8, max(2, 5 - start.adjusted()))
    return Decimal(1).scaleb(-places)


def next_price(current: Decimal, start: Decimal, step_bps: int, band: Decimal) -> Decimal:
    """One step of `step_bps` basis points, kept within `start x (1 +- band)`."""
    quantum = price_quantum(start)
    low = max(quantum, (start * (1 - band)).quantize(quantum, rounding=ROUND_HALF_EVEN))
    high = (start * (1 + band)).quantize(quantum, rounding=ROUND_HALF_EVEN)
    moved = (current * (1 + Decimal(step_bps) / _BPS)).quantize(quantum, rounding=ROUND_HALF_EVEN)
    return min(high, max(low, moved))


class RandomWalk:
    def __init__(
        self, assets: Sequence[AssetInfo], max_step_bps: int, band: Decimal, seed: int | None
    ) -> None:
        self._start = {a.symbol: a.start_price for a in assets}
        self._current = dict(self._start)
        self._max_step = max_step_bps
        self._band = band
        self._rng = random.Random(seed)

    def step(self) -> dict[str, Decimal]:
        """Every asset's next price."""
        for symbol, start in self._start.items():
            bps = self._rng.randint(-self._max_step, self._max_step)
            self._current[symbol] = next_price(self._current[symbol], start, bps, self._band)
        return dict(self._current)


@dataclass(frozen=True)
class RecordedTick:
    elapsed_s: float
    asset: str
    price: Decimal


def read_recording(path: Path) -> list[RecordedTick]:
    """Rows `elapsed_s,asset,price` (with that header), in the order to replay them."""
    with path.open(newline="") as f:
        return list(parse_recording(csv.DictReader(f)))


def parse_recording(rows: Iterable[dict[str, str]]) -> Iterator[RecordedTick]:
    for line, row in enumerate(rows, start=2):
        try:
            asset = row["asset"].strip().upper()
            if not is_symbol(asset):
                raise ValueError(f"not a symbol: {asset!r}")
            price = parse_decimal_string(row["price"].strip())
            if price <= 0:
                raise ValueError("price must be greater than 0")
            elapsed = float(row["elapsed_s"])
        except (KeyError, ValueError, AttributeError) as exc:
            raise ValueError(f"line {line}: {exc}") from exc
        yield RecordedTick(elapsed, asset, price)
