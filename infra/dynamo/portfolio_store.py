"""Positions (`POSITION#<asset>` under the account): written by the portfolio projection, read by the API."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from consumers.common.ports import CommitResult, StoredOutcome
from consumers.portfolio.ports import LoadedPosition
from consumers.portfolio.positions import HANDLER, Position, PositionDecision, PositionState
from infra.dynamo.client import DynamoDBClient, as_decimal, from_item, to_attr, to_item
from infra.dynamo.events import outcome_record
from infra.dynamo.keys import account_pk, command_sk
from infra.dynamo.trading_keys import POSITION_PREFIX, position_sk
from infra.dynamo.transactions import commit_guarded

_DEDUPE_PREFIX = f"COMMAND#{HANDLER}#"


def _plain(value: Decimal) -> Decimal:
    # A quantized zero (`0E-8`) reads back as a number with an exponent; store a plain 0.
    return value if value else Decimal(0)


class DynamoPortfolioStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, account_id: str, sk: str) -> dict[str, Any]:
        return {"PK": to_attr(account_pk(account_id)), "SK": to_attr(sk)}

    async def load(self, account_id: str, asset: str, source_event_id: uuid.UUID) -> LoadedPosition:
        response = await self._client.transact_get_items(
            TransactItems=[
                {"Get": {"TableName": self._table, "Key": self._key(account_id, sk)}}
                for sk in (command_sk(HANDLER, source_event_id), position_sk(asset))
            ]
        )
        record, item = (from_item(r.get("Item") or {}) for r in response["Responses"])
        state = PositionState(
            position=Position(
                quantity=as_decimal(item.get("quantity")),
                average_cost=as_decimal(item.get("average_cost")),
                realized_pnl=as_decimal(item.get("realized_pnl")),
            ),
            version=int(item["version"]) if item else None,
        )
        outcome = None
        if record:
            outcome = StoredOutcome(
                topic=str(record["topic"]), events=tuple(str(e).encode() for e in record.get("events", []))
            )
        return LoadedPosition(state=state, outcome=outcome)

    async def commit(self, decision: PositionDecision, topic: str) -> CommitResult:
        pk = account_pk(decision.account_id)
        position = decision.position
        values = {
            "PK": pk,
            "SK": position_sk(decision.asset),
            "asset": decision.asset,
            "quantity": _plain(position.quantity),
            "average_cost": _plain(position.average_cost),
            "realized_pnl": _plain(position.realized_pnl),
            "version": (decision.expected_version or 0) + 1,
            "last_event_id": str(decision.source_event_id),
        }
        put: dict[str, Any] = {"TableName": self._table, "Item": to_item(values)}
        if decision.expected_version is None:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": to_attr(decision.expected_version)}
        # The PositionChanged event lives in the dedupe record only: an `EVENT#` item would show up in
        # the account's cash history, which lists the account's `EVENT#` items.
        items = [
            outcome_record(
                self._table,
                pk,
                command_sk(HANDLER, decision.source_event_id),
                topic=topic,
                events=decision.events,
                outcome="applied",
                reason=None,
            ),
            {"Put": put},
        ]
        return await commit_guarded(self._client, items)

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
