"""DynamoDB adapter of trading: one `TransactGetItems` to load, one `TransactWriteItems` per decision.

The balance item is shared with the ledger. Both writers follow the same optimistic protocol: read
`version`, write `version + 1` on condition `version = :v`. The money rules are stated in the
conditions too (`available >= :cost` for a buy, `quantity >= :q` for a sell), so that no writer, even
one that skipped the version check, could overspend or oversell.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from consumers.common.ports import CommitResult, StoredOutcome
from consumers.trading.decisions import HANDLER, OrderDecision, OrderState
from consumers.trading.ports import LoadedOrderState
from infra.dynamo.client import DynamoDBClient, as_decimal, from_item, to_attr, to_item
from infra.dynamo.events import event_put, history_version, outcome_record
from infra.dynamo.keys import account_pk, balance_sk, command_sk
from infra.dynamo.trading_keys import (
    ASSET_META_SK,
    ASSET_PRICE_SK,
    asset_pk,
    holding_sk,
    order_log_sk,
    order_sk,
)
from infra.dynamo.transactions import commit_guarded
from schemas.money import decimal_to_str
from schemas.trading import is_symbol


def order_record(decision: OrderDecision) -> dict[str, Any]:
    """The order as `GET /v1/orders` shows it (without the keys)."""
    leg = decision.leg
    return {
        "order_id": str(decision.order_id),
        "command_id": str(decision.command_id),
        "side": decision.side,
        "asset": decision.asset,
        "quantity": decimal_to_str(decision.quantity),
        "type": "market",
        "status": "filled" if decision.settled else "rejected",
        "reason": decision.reason,
        "price": decimal_to_str(decision.price) if decision.price is not None else None,
        "cash_amount": decimal_to_str(leg.cash) if leg else None,
        "fee": decimal_to_str(leg.fee) if leg else None,
        "balance_after": decimal_to_str(decision.new_available)
        if decision.new_available is not None
        else None,
        "placed_at": decision.placed_at.isoformat(),
        "completed_at": decision.decided_at.isoformat(),
    }


class DynamoTradingStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _get(self, pk: str, sk: str) -> dict[str, Any]:
        return {"Get": {"TableName": self._table, "Key": {"PK": to_attr(pk), "SK": to_attr(sk)}}}

    async def load(self, account_id: str, command_id: uuid.UUID, asset: str) -> LoadedOrderState:
        pk = account_pk(account_id)
        gets = [self._get(pk, command_sk(HANDLER, command_id)), self._get(pk, balance_sk())]
        # A malformed symbol can name no asset, and must not become part of a key (DynamoDB would refuse
        # an oversized one, and the message would fail forever instead of being rejected).
        tradable = is_symbol(asset)
        if tradable:
            gets += [
                self._get(pk, holding_sk(asset)),
                self._get(asset_pk(asset), ASSET_META_SK),
                self._get(asset_pk(asset), ASSET_PRICE_SK),
            ]
        response = await self._client.transact_get_items(TransactItems=gets)  # type: ignore[arg-type]
        items = [from_item(r.get("Item") or {}) for r in response["Responses"]]
        record, balance = items[0], items[1]
        holding, meta, price = items[2:] if tradable else ({}, {}, {})
        state = OrderState(
            account_exists=bool(balance),
            available=as_decimal(balance.get("available")),
            balance_version=int(balance.get("version", 0)),
            holding=as_decimal(holding.get("quantity")),
            holding_version=int(holding["version"]) if holding else None,
            asset_known=bool(meta),
            price=as_decimal(price["price"]) if price.get("price") is not None else None,
        )
        outcome = None
        if record:
            outcome = StoredOutcome(
                topic=str(record["topic"]), events=tuple(str(e).encode() for e in record.get("events", []))
            )
        return LoadedOrderState(state=state, outcome=outcome)

    async def commit(self, decision: OrderDecision, topic: str) -> CommitResult:
        pk = account_pk(decision.account_id)
        record = order_record(decision)
        items: list[dict[str, Any]] = [
            outcome_record(
                self._table,
                pk,
                command_sk(HANDLER, decision.command_id),
                topic=topic,
                events=decision.events,
                outcome="settled" if decision.settled else "rejected",
                reason=decision.reason,
            ),
        ]
        if decision.settled:
            items += [self._balance_update(decision), self._holding_update(decision)]
        items += [
            self._put_new(pk, order_sk(decision.order_id), record),
            self._put_new(pk, order_log_sk(decision.placed_at, decision.order_id), record),
            *(
                event_put(
                    self._table, pk, e, history_version(decision.observed_balance_version, decision.settled)
                )
                for e in decision.events
            ),
        ]
        return await commit_guarded(self._client, items)

    def _put_new(self, pk: str, sk: str, values: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": to_item({"PK": pk, "SK": sk, **values}),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }

    def _balance_update(self, decision: OrderDecision) -> dict[str, Any]:
        assert decision.balance_version is not None and decision.leg is not None
        assert decision.new_available is not None
        minimum = decision.leg.cash if decision.side == "buy" else Decimal(0)
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"PK": to_attr(account_pk(decision.account_id)), "SK": to_attr(balance_sk())},
                "UpdateExpression": "SET available = :new, version = :next",
                "ConditionExpression": "version = :v AND available >= :minimum",
                "ExpressionAttributeValues": {
                    ":new": to_attr(decision.new_available),
                    ":next": to_attr(decision.balance_version + 1),
                    ":v": to_attr(decision.balance_version),
                    ":minimum": to_attr(minimum),
                },
            }
        }

    def _holding_update(self, decision: OrderDecision) -> dict[str, Any]:
        assert decision.new_holding is not None
        key = {"PK": to_attr(account_pk(decision.account_id)), "SK": to_attr(holding_sk(decision.asset))}
        values: dict[str, Any] = {
            ":new": to_attr(decision.new_holding),
            ":next": to_attr((decision.holding_version or 0) + 1),
            ":asset": to_attr(decision.asset),
        }
        if decision.holding_version is None:
            condition = "attribute_not_exists(version)"
        else:
            condition = "version = :v"
            values[":v"] = to_attr(decision.holding_version)
        if decision.side == "sell":
            condition += " AND quantity >= :q"
            values[":q"] = to_attr(decision.quantity)
        return {
            "Update": {
                "TableName": self._table,
                "Key": key,
                "UpdateExpression": "SET quantity = :new, version = :next, asset = :asset",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }
