"""Keep the latest price per asset. A tick older than the stored one changes nothing, so redelivery,
replay and out-of-order ticks are all harmless: the stored price never goes back in time."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from consumers.common import metrics
from schemas.envelope import Envelope
from schemas.trading import PriceTick

log = structlog.get_logger(__name__)


class PriceStore(Protocol):
    async def record_tick(self, tick: PriceTick) -> bool: ...


@dataclass(frozen=True)
class PricePorts:
    store: PriceStore
    # The symbols of the reference data: ticks for anything else are ignored, not stored.
    known_assets: Collection[str]


async def record_price(envelope: Envelope[Any], ports: PricePorts) -> bool:
    tick: PriceTick = envelope.payload
    if tick.asset not in ports.known_assets:
        log.warning("prices.unknown_asset", asset=tick.asset)
        metrics.count_outcome(PriceTick.TYPE, "ignored", "unknown_asset")
        return False
    written = await ports.store.record_tick(tick)
    if not written:
        log.debug("prices.stale_tick", asset=tick.asset, at=tick.at.isoformat())
    metrics.count_outcome(PriceTick.TYPE, "recorded" if written else "ignored", "" if written else "stale")
    return written
