"""Assets and their latest prices: reference data loaded at provisioning, prices written per tick."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from infra.dynamo.client import DynamoDBClient, as_decimal, from_item, to_attr, to_item
from infra.dynamo.trading_keys import (
    ASSET_META_SK,
    ASSET_PRICE_SK,
    CATALOGUE_PK,
    CATALOGUE_PREFIX,
    asset_pk,
    catalogue_sk,
)
from schemas.trading import AssetInfo, LatestPrice, PriceTick

_BATCH_WRITE = 25
_BATCH_GET = 100


def _epoch_us(at: datetime) -> int:
    # An integer, so the "newer than" condition compares numbers, not strings of varying precision.
    return int(at.timestamp()) * 1_000_000 + at.microsecond


class DynamoAssets:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, Any]:
        return {"PK": to_attr(pk), "SK": to_attr(sk)}

    async def load_reference_data(self, assets: Sequence[AssetInfo]) -> None:
        """Idempotent: puts the catalogue and per-asset items again; prices are left as they are."""
        items: list[dict[str, Any]] = []
        for rank, asset in enumerate(assets, start=1):
            meta = {"symbol": asset.symbol, "name": asset.name, "rank": rank}
            items.append(to_item({"PK": CATALOGUE_PK, "SK": catalogue_sk(asset.symbol), **meta}))
            items.append(to_item({"PK": asset_pk(asset.symbol), "SK": ASSET_META_SK, **meta}))
        for start in range(0, len(items), _BATCH_WRITE):
            pending: dict[str, Any] = {
                self._table: [{"PutRequest": {"Item": i}} for i in items[start : start + _BATCH_WRITE]]
            }
            while pending:
                response = await self._client.batch_write_item(RequestItems=pending)
                pending = dict(response.get("UnprocessedItems") or {})

    async def catalogue(self) -> list[dict[str, Any]]:
        """Every asset's symbol, name and rank: one Query over the catalogue partition."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": to_attr(CATALOGUE_PK), ":prefix": to_attr(CATALOGUE_PREFIX)},
        }
        found: list[dict[str, Any]] = []
        while True:
            response = await self._client.query(**query)
            found.extend(from_item(i) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return sorted(found, key=lambda a: int(a.get("rank", 0)))
            query["ExclusiveStartKey"] = last

    async def latest_price(self, symbol: str) -> LatestPrice | None:
        response = await self._client.get_item(
            TableName=self._table, Key=self._key(asset_pk(symbol), ASSET_PRICE_SK), ConsistentRead=True
        )
        item = response.get("Item")
        return _latest(from_item(item)) if item else None

    async def latest_prices(self, symbols: Iterable[str]) -> dict[str, LatestPrice]:
        wanted = sorted(set(symbols))
        prices: dict[str, LatestPrice] = {}
        for start in range(0, len(wanted), _BATCH_GET):
            keys = [self._key(asset_pk(s), ASSET_PRICE_SK) for s in wanted[start : start + _BATCH_GET]]
            pending: dict[str, Any] = {self._table: {"Keys": keys}}
            while pending:
                response = await self._client.batch_get_item(RequestItems=pending)
                for raw in response.get("Responses", {}).get(self._table, []):
                    item = from_item(raw)
                    prices[str(item["symbol"])] = _latest(item)
                pending = dict(response.get("UnprocessedKeys") or {})
        return prices

    async def record_tick(self, tick: PriceTick) -> bool:
        """Writes the tick if it is newer than the stored price; False for a stale or repeated one."""
        try:
            await self._client.update_item(
                TableName=self._table,
                Key=self._key(asset_pk(tick.asset), ASSET_PRICE_SK),
                UpdateExpression="SET price = :price, #at = :at, at_us = :at_us, symbol = :symbol",
                ConditionExpression="attribute_not_exists(at_us) OR at_us < :at_us",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={
                    ":price": to_attr(tick.price),
                    ":at": to_attr(tick.at.isoformat()),
                    ":at_us": to_attr(_epoch_us(tick.at)),
                    ":symbol": to_attr(tick.asset),
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _latest(item: dict[str, Any]) -> LatestPrice:
    return LatestPrice(price=as_decimal(item["price"]), at=datetime.fromisoformat(str(item["at"])))


class AssetDirectory:
    """The API's view of the assets: the catalogue and a listing's prices cached for a short while.

    About 50 small items change every couple of seconds at most, so a per-process cache beats a read per
    request. Order checks use the cached prices too; a single asset's read reads its price fresh.
    """

    # Reference data changes only with a new release: cache it longer than prices.
    CATALOGUE_TTL_S = 60.0

    def __init__(
        self, assets: DynamoAssets, price_ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._assets = assets
        self._price_ttl = price_ttl_s
        self._clock = clock
        self._catalogue: dict[str, dict[str, Any]] = {}
        self._catalogue_at = -math.inf
        self._prices: dict[str, LatestPrice] = {}
        self._prices_at = -math.inf
        self._lock = asyncio.Lock()

    async def catalogue(self) -> dict[str, dict[str, Any]]:
        """Symbol -> {symbol, name, rank}, in listing order."""
        if self._clock() - self._catalogue_at < self.CATALOGUE_TTL_S:
            return self._catalogue
        async with self._lock:
            if self._clock() - self._catalogue_at >= self.CATALOGUE_TTL_S:
                rows = await self._assets.catalogue()
                self._catalogue = {str(r["symbol"]): r for r in rows}
                # An empty catalogue (not provisioned yet) is asked for again next time.
                self._catalogue_at = self._clock() if rows else -math.inf
        return self._catalogue

    async def listing_prices(self) -> dict[str, LatestPrice]:
        catalogue = await self.catalogue()
        if self._clock() - self._prices_at < self._price_ttl:
            return self._prices
        async with self._lock:
            if self._clock() - self._prices_at >= self._price_ttl:
                self._prices = await self._assets.latest_prices(catalogue)
                self._prices_at = self._clock()
        return self._prices

    async def latest_price(self, symbol: str) -> LatestPrice | None:
        return await self._assets.latest_price(symbol)

    async def latest_prices(self, symbols: Iterable[str]) -> dict[str, LatestPrice]:
        return await self._assets.latest_prices(symbols)
