"""The tradable assets and their latest prices (public)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import ResourcesDep, limit_anonymous
from api.problems import ProblemError
from schemas.trading import LatestPrice, normalise_symbol
from schemas.trading_http import AssetList, AssetView

router = APIRouter(prefix="/v1/assets", tags=["assets"], dependencies=[Depends(limit_anonymous)])


def _view(meta: dict[str, Any], price: LatestPrice | None) -> AssetView:
    return AssetView(
        symbol=str(meta["symbol"]),
        name=str(meta["name"]),
        price=price.price if price else None,
        updated_at=price.at if price else None,
    )


def matches(meta: dict[str, Any], search: str) -> int | None:
    """How well an asset matches a search: 0 for the exact symbol, 1 for a prefix of the symbol or the
    name, 2 for anywhere in either; None for no match. Case-insensitive."""
    needle = search.strip().lower()
    symbol, name = str(meta["symbol"]).lower(), str(meta["name"]).lower()
    if symbol == needle:
        return 0
    if symbol.startswith(needle) or name.startswith(needle):
        return 1
    if needle in symbol or needle in name:
        return 2
    return None


@router.get("", response_model=AssetList)
async def list_assets(
    resources: ResourcesDep,
    search: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AssetList:
    """Assets in market-capitalisation order, or the best matches of `search` by symbol or name."""
    catalogue = await resources.assets.catalogue()
    prices = await resources.assets.listing_prices()
    metas = list(catalogue.values())
    if search and search.strip():
        ranked = [(rank, i, m) for i, m in enumerate(metas) if (rank := matches(m, search)) is not None]
        metas = [m for _, _, m in sorted(ranked, key=lambda r: (r[0], r[1]))]
    return AssetList(items=[_view(m, prices.get(str(m["symbol"]))) for m in metas[:limit]])


@router.get("/{symbol}", response_model=AssetView)
async def get_asset(symbol: str, resources: ResourcesDep) -> AssetView:
    """One asset and its latest price, read fresh."""
    meta = (await resources.assets.catalogue()).get(normalise_symbol(symbol))
    if meta is None:
        raise ProblemError(404, "Not found", f"no asset {symbol!r}")
    return _view(meta, await resources.assets.latest_price(str(meta["symbol"])))
