"""Positions (`POSITION#<asset>` under the account): written by the portfolio projection, read by the API.

A run of fills for one account is written as one conditioned put per position (its final state, its
version bumped once per fill, as one fill at a time would leave it) with one dedupe record per fill.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from consumers.common.settle import AccountPlan, Snapshot
from consumers.portfolio.positions import HANDLER, Position, PositionDecision, Positions, PositionState
from infra.dynamo.client import DynamoDBClient, as_decimal, from_item, to_attr, to_item
from infra.dynamo.events import outcome_keys, outcome_record, stored_outcomes
from infra.dynamo.keys import account_pk, command_prefix, command_sk
from infra.dynamo.trading_keys import POSITION_PREFIX, position_sk
from infra.dynamo.transactions import MAX_TRANSACTION_ITEMS, ItemGroup, get_items, write_groups
from schemas.envelope import Envelope
from schemas.events import OrderFilled

_DEDUPE_PREFIX = command_prefix(HANDLER)


def _plain(value: Decimal) -> Decimal:
    # A quantized zero (`0E-8`) reads back as a number with an exponent; store a plain 0.
    return value if value else Decimal(0)


class DynamoPortfolioStore:
    # One dedupe record per fill, and at most one position it adds.
    max_commands_per_account = MAX_TRANSACTION_ITEMS // 2

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, account_id: str, sk: str) -> dict[str, Any]:
        return {"PK": to_attr(account_pk(account_id)), "SK": to_attr(sk)}

    async def load(self, messages: Sequence[Envelope[Any]]) -> Snapshot[Positions]:
        fills = [m for m in messages if isinstance(m.payload, OrderFilled)]
        held = {(m.account_id, m.payload.asset) for m in fills}
        keys = [
            *((account_pk(a), position_sk(asset)) for a, asset in held),
            *outcome_keys(HANDLER, fills),
        ]
        found = await get_items(self._client, self._table, keys)
        states: dict[str, Positions] = {}
        for account_id in {m.account_id for m in messages}:
            by_asset = {
                asset: PositionState(
                    Position(
                        quantity=as_decimal(item.get("quantity")),
                        average_cost=as_decimal(item.get("average_cost")),
                        realized_pnl=as_decimal(item.get("realized_pnl")),
                    ),
                    int(item["version"]),
                )
                for a, asset in held
                if a == account_id and (item := found.get((account_pk(a), position_sk(asset))))
            }
            states[account_id] = Positions(by_asset)
        return Snapshot(states, stored_outcomes(HANDLER, fills, found))

    async def commit(
        self, plans: Sequence[AccountPlan[Positions, PositionDecision]], topic: str
    ) -> frozenset[str]:
        groups = [ItemGroup(plan.account_id, self._items(plan, topic)) for plan in plans]
        return await write_groups(self._client, groups)

    def _items(self, plan: AccountPlan[Positions, PositionDecision], topic: str) -> list[dict[str, Any]]:
        if len(plan.decisions) > self.max_commands_per_account:
            raise ValueError(f"{len(plan.decisions)} fills for one account exceed one transaction")
        pk = account_pk(plan.account_id)
        last_fill = {d.asset: d.source_event_id for d in plan.decisions}
        items = [self._position_put(plan, asset, fill_id) for asset, fill_id in last_fill.items()]
        # The PositionChanged event lives in the dedupe record only: an `EVENT#` item would show up in
        # the account's cash history, which lists the account's `EVENT#` items.
        items += [
            outcome_record(
                self._table,
                pk,
                command_sk(HANDLER, d.source_event_id),
                topic=topic,
                events=d.events,
                outcome="applied",
                reason=None,
            )
            for d in plan.decisions
        ]
        return items

    def _position_put(
        self, plan: AccountPlan[Positions, PositionDecision], asset: str, last_fill: uuid.UUID
    ) -> dict[str, Any]:
        before = plan.before.by_asset.get(asset)
        after = plan.after.by_asset[asset]
        position = after.position
        values = {
            "PK": account_pk(plan.account_id),
            "SK": position_sk(asset),
            "asset": asset,
            "quantity": _plain(position.quantity),
            "average_cost": _plain(position.average_cost),
            "realized_pnl": _plain(position.realized_pnl),
            "version": after.version,
            "last_event_id": str(last_fill),
        }
        put: dict[str, Any] = {"TableName": self._table, "Item": to_item(values)}
        if before is None:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": to_attr(before.version)}
        return {"Put": put}

    async def positions(self, account_id: str) -> list[dict[str, Any]]:
        return await self._query_prefix(account_id, POSITION_PREFIX)

    async def applied_event(self, account_id: str, source_event_id: uuid.UUID | str) -> bool:
        response = await self._client.get_item(
            TableName=self._table,
            Key=self._key(account_id, f"{_DEDUPE_PREFIX}{source_event_id}"),
            ConsistentRead=True,
        )
        return "Item" in response

    async def clear_account(self, account_id: str) -> int:
        """Drops the account's projection (positions and dedupe records) before a replay rebuilds it.

        Run it only while the portfolio consumer is stopped. Returns how many items it deleted.
        """
        items = [
            *(await self._query_prefix(account_id, POSITION_PREFIX)),
            *(await self._query_prefix(account_id, _DEDUPE_PREFIX)),
        ]
        for start in range(0, len(items), 25):
            requests: list[dict[str, Any]] = [
                {"DeleteRequest": {"Key": {"PK": to_attr(i["PK"]), "SK": to_attr(i["SK"])}}}
                for i in items[start : start + 25]
            ]
            pending: dict[str, Any] = {self._table: requests}
            while pending:
                response = await self._client.batch_write_item(RequestItems=pending)
                pending = dict(response.get("UnprocessedItems") or {})
        return len(items)

    async def _query_prefix(self, account_id: str, prefix: str) -> list[dict[str, Any]]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": to_attr(account_pk(account_id)), ":prefix": to_attr(prefix)},
            "ConsistentRead": True,
        }
        found: list[dict[str, Any]] = []
        while True:
            response = await self._client.query(**query)
            found.extend(from_item(i) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return found
            query["ExclusiveStartKey"] = last
