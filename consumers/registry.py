"""Every long-running app process but the API, in one place: what `make run`, compose, the CLI, the chaos
suite, the bench and the AsyncAPI document read (the message types per topic come from
`schemas.catalogue`).

A consumer's `name` is also its Kafka consumer group, its process name under `make run` and its compose
service. `metrics_port` is where it serves Prometheus metrics unless `LEDGERFLOW_METRICS_PORT` says
otherwise (`make run` and the test fixtures set it per process). Adding a consumer means adding it here;
`tests/unit/test_registry.py` fails while an app under `consumers/` or a compose service is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from schemas.topics import (
    BALANCE_EVENTS,
    DEPOSIT_COMMANDS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PORTFOLIO_EVENTS,
    PRICES,
    WITHDRAWAL_COMMANDS,
)


@dataclass(frozen=True)
class AppSpec:
    name: str
    # "module:attribute", as `faststream run` takes it.
    app: str
    metrics_port: int
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    # An account's messages must take effect in order: a message given up on quarantines its account
    # (consumers.common.quarantine). Also: the consumer settles money or positions.
    ordered: bool = False

    @property
    def module(self) -> str:
        return self.app.partition(":")[0]

    @property
    def is_consumer(self) -> bool:
        return bool(self.reads)


LEDGER: Final = AppSpec(
    "ledger",
    "consumers.ledger.app:app",
    9101,
    reads=(DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS),
    writes=(BALANCE_EVENTS,),
    ordered=True,
)
TRADING: Final = AppSpec(
    "trading",
    "consumers.trading.app:app",
    9102,
    reads=(ORDER_COMMANDS,),
    writes=(ORDER_EVENTS,),
    ordered=True,
)
PORTFOLIO: Final = AppSpec(
    "portfolio",
    "consumers.portfolio.app:app",
    9103,
    reads=(ORDER_EVENTS,),
    writes=(PORTFOLIO_EVENTS,),
    ordered=True,
)
# Ticks are keyed by asset, not account, and the next tick supersedes a lost one: nothing to hold back.
PRICE_RECORDER: Final = AppSpec("prices", "consumers.prices.app:app", 9104, reads=(PRICES,))
# Not a consumer: the price producer, a FastStream app (`python -m producers.prices` runs it alone).
PRICE_FEED: Final = AppSpec("price-feed", "producers.prices.app:app", 9105, writes=(PRICES,))

APPS: Final[Mapping[str, AppSpec]] = {
    spec.name: spec for spec in (LEDGER, TRADING, PORTFOLIO, PRICE_RECORDER, PRICE_FEED)
}
CONSUMERS: Final[Mapping[str, AppSpec]] = {name: spec for name, spec in APPS.items() if spec.is_consumer}
# Consumer groups and the topics each reads (lag, replay, redrive).
CONSUMER_GROUPS: Final[Mapping[str, tuple[str, ...]]] = {name: c.reads for name, c in CONSUMERS.items()}
# The consumers that settle money or positions (what the chaos suite replays and the bench measures).
SETTLING: Final[tuple[str, ...]] = tuple(name for name, c in CONSUMERS.items() if c.ordered)
# Who writes each command topic (the API) is not an app of this registry: see schemas.catalogue.
