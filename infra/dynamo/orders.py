"""The account's orders, as the trading consumer recorded them: by id, and newest first.

An order is kept on its command's record (an `EVENT#` item of the account, see `keys.command_record_sk`).
Orders settled before that layout keep their details on a record of their own (`COMMAND#trading#<id>`, or
earlier `ORDER#<id>`), next to their event item: those are read from there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from consumers.trading.decisions import HANDLER
from infra.dynamo.client import DynamoDBClient
from infra.dynamo.command_statuses import DynamoCommandStatuses
from infra.dynamo.keys import EVENT_PREFIX, account_pk, command_sk
from infra.dynamo.pagination import Page, newest_first
from infra.dynamo.trading_keys import legacy_order_sk
from infra.dynamo.transactions import ItemKey, get_items
from schemas.events import ORDER_EVENT_TYPES


def _legacy_keys(account_id: str, order_id: uuid.UUID | str) -> list[ItemKey]:
    pk = account_pk(account_id)
    return [(pk, command_sk(HANDLER, uuid.UUID(str(order_id)))), (pk, legacy_order_sk(order_id))]


def _legacy_order(found: dict[ItemKey, dict[str, Any]], keys: Sequence[ItemKey]) -> dict[str, Any] | None:
    return next((found[k] for k in keys if k in found and "order_id" in found[k]), None)


class DynamoOrders:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self._records = DynamoCommandStatuses(client, table)

    async def get(self, account_id: str, order_id: uuid.UUID) -> dict[str, Any] | None:
        """The order (its id is the command's), found by the command-id index (eventually consistent: an
        order decided a moment ago may not be found yet), or on the older layout's records."""
        legacy = _legacy_keys(account_id, order_id)
        records = await self._records.record_keys(account_id, order_id)
        found = await get_items(self._client, self._table, [*records, *legacy])
        for key in records:
            if "order" in found.get(key, {}):
                return dict(found[key]["order"])
        return _legacy_order(found, legacy)

    async def page(self, account_id: str, limit: int, cursor: str | None) -> Page:
        """Newest first (by the time the order was placed); raises ValueError for a bad cursor."""
        page = await newest_first(
            self._client, self._table, account_id, EVENT_PREFIX, limit, cursor, of_types=ORDER_EVENT_TYPES
        )
        older = {
            str(i["causation_id"]): _legacy_keys(account_id, str(i["causation_id"]))
            for i in page.items
            if "order" not in i
        }
        found = await get_items(self._client, self._table, [k for keys in older.values() for k in keys])
        orders = [
            dict(i["order"]) if "order" in i else _legacy_order(found, older[str(i["causation_id"])])
            for i in page.items
        ]
        return Page([o for o in orders if o is not None], page.next_cursor)
