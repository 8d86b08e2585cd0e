"""What the simulated users send: a mix of deposits, withdrawals, market buys and sells, sized so that
they settle rather than bounce.

Every account is first funded with one large deposit, awaited and not measured, so the mix is the mix
from the first second. Each account then keeps a conservative book: cash and units count once their
credit has settled, and are reserved as soon as a debit is sent. So a withdrawal or buy is only sent
with the cash for it, a sell only with the units, and rejections stay rare whatever the concurrency.
Prices are fixed by the benchmark (it publishes the ticks itself), so every trade's cash leg is known
in advance.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

PRICE: Final = "10.00"
PRICE_CENTS: Final = 1000
DEPOSIT_CENTS: Final = 200
WITHDRAWAL_CENTS: Final = 100
# Trades of 0.2 units at 10.00: 2.00 of cash each way (an order's value must be at least 1.00).
ORDER_TENTHS: Final = 2
ORDER_CENTS: Final = ORDER_TENTHS * PRICE_CENTS // 10
ASSETS: Final = ("BTC", "ETH", "SOL", "BNB")
KINDS: Final = ("deposit", "withdrawal", "buy", "sell")
DEFAULT_MIX: Final[Mapping[str, float]] = {"deposit": 0.3, "withdrawal": 0.2, "buy": 0.25, "sell": 0.25}
PATHS: Final[Mapping[str, str]] = {
    "deposit": "/v1/deposits",
    "withdrawal": "/v1/withdrawals",
    "buy": "/v1/orders",
    "sell": "/v1/orders",
}


@dataclass(frozen=True)
class Planned:
    account: int
    kind: str
    asset: str | None
    path: str
    body: bytes


@dataclass
class Book:
    """What an account can spend without any risk of a rejection (cents, and tenths of a unit)."""

    cash: int = 0
    units: dict[str, int] = field(default_factory=dict)


def _cash_body(cents: int) -> bytes:
    return json.dumps({"amount": f"{cents // 100}.{cents % 100:02d}"}).encode()


def _order_body(side: str, asset: str) -> bytes:
    quantity = f"{ORDER_TENTHS // 10}.{ORDER_TENTHS % 10}"
    return json.dumps({"side": side, "asset": asset, "quantity": quantity, "type": "market"}).encode()


_BODIES: Final[Mapping[tuple[str, str | None], bytes]] = {
    ("deposit", None): _cash_body(DEPOSIT_CENTS),
    ("withdrawal", None): _cash_body(WITHDRAWAL_CENTS),
    **{("buy", a): _order_body("buy", a) for a in ASSETS},
    **{("sell", a): _order_body("sell", a) for a in ASSETS},
}


def parse_mix(text: str) -> dict[str, float]:
    """`deposit=3,withdrawal=2,buy=2.5,sell=2.5` -> weights (normalised); kinds left out weigh 0."""
    weights = dict.fromkeys(KINDS, 0.0)
    for item in (p.strip() for p in text.split(",") if p.strip()):
        kind, equals, value = item.partition("=")
        if not equals or kind.strip() not in weights:
            raise ValueError(f"{item!r}: expected KIND=WEIGHT with KIND one of {', '.join(KINDS)}")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"{item!r}: the weight is not a number") from None
        if weight < 0 or weight != weight:
            raise ValueError(f"{item!r}: a weight is a number >= 0")
        weights[kind.strip()] = weight
    whole = sum(weights.values())
    if whole <= 0:
        raise ValueError("the mix needs at least one kind with a weight above 0")
    return {kind: weight / whole for kind, weight in weights.items()}


class Workload:
    """Chooses each account's next command from the mix, within what its book allows (`gated`), and
    books the outcome. Without gating (intake-only runs: nothing settles) it follows the mix blindly."""

    def __init__(
        self,
        accounts: int,
        rng: random.Random,
        mix: Mapping[str, float] = DEFAULT_MIX,
        *,
        gated: bool = True,
        assets: Sequence[str] = ASSETS,
    ) -> None:
        self.books = [Book() for _ in range(accounts)]
        self._rng = rng
        self._kinds = list(mix)
        self._weights = [mix[k] for k in self._kinds]
        self._gated = gated
        self._assets = list(assets)
        self._next_account = 0

    def next_account(self) -> int:
        """Round-robin over the accounts."""
        account = self._next_account
        self._next_account = (account + 1) % len(self.books)
        return account

    def plan(self, account: int) -> Planned:
        kind = self._rng.choices(self._kinds, self._weights)[0]
        asset = self._rng.choice(self._assets) if kind in ("buy", "sell") else None
        if self._gated:
            kind, asset = self._feasible(self.books[account], kind, asset)
            self._reserve(self.books[account], kind, asset)
        return Planned(account, kind, asset, PATHS[kind], _BODIES[(kind, asset)])

    def _feasible(self, book: Book, kind: str, asset: str | None) -> tuple[str, str | None]:
        if kind == "sell":
            held = [a for a in self._assets if book.units.get(a, 0) >= ORDER_TENTHS]
            if asset not in held:
                if held:
                    return "sell", self._rng.choice(held)
                kind, asset = "buy", self._rng.choice(self._assets)
        if kind == "buy" and book.cash < ORDER_CENTS:
            return "deposit", None
        if kind == "withdrawal" and book.cash < WITHDRAWAL_CENTS:
            return "deposit", None
        return kind, asset

    @staticmethod
    def _reserve(book: Book, kind: str, asset: str | None) -> None:
        if kind == "withdrawal":
            book.cash -= WITHDRAWAL_CENTS
        elif kind == "buy":
            book.cash -= ORDER_CENTS
        elif kind == "sell" and asset is not None:
            book.units[asset] -= ORDER_TENTHS

    def settle(self, planned: Planned, settled: bool) -> None:
        """Book a command's outcome (`settled` False: rejected, or never accepted)."""
        if not self._gated:
            return
        book = self.books[planned.account]
        asset = planned.asset
        if settled:
            if planned.kind == "deposit":
                book.cash += DEPOSIT_CENTS
            elif planned.kind == "buy" and asset is not None:
                book.units[asset] = book.units.get(asset, 0) + ORDER_TENTHS
            elif planned.kind == "sell":
                book.cash += ORDER_CENTS
            return
        # Rejected or refused: give back what was reserved.
        if planned.kind == "withdrawal":
            book.cash += WITHDRAWAL_CENTS
        elif planned.kind == "buy":
            book.cash += ORDER_CENTS
        elif planned.kind == "sell" and asset is not None:
            book.units[asset] += ORDER_TENTHS
