"""DynamoDB adapter of trading's settlement: a batch's accounts, holdings and quotes read at once, each
account's orders written as one coalesced balance update and one update per traded holding, with each
order's one record (its event, dedupe guard, status and order details).

The balance item is shared with the ledger. Both writers follow the same optimistic protocol: read
`version`, write the version the run's last fill left (one bump per fill) on condition `version = :v`.
The money rules are stated in the conditions too (`available >=` the least starting cash that covers
every buy of the run, `quantity >=` the least starting holding that covers every sell), so that no
writer, even one that skipped the version check, could overspend or oversell. Rejections change no
state and carry no state condition: each is true of the item it was decided on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from consumers.common.settle import AccountPlan, Snapshot
from consumers.trading.decisions import HANDLER, Holding, OrderDecision, Quote, TradingAccount
from infra.dynamo.client import DynamoDBClient, as_decimal, to_attr
from infra.dynamo.coalesce import least_start
from infra.dynamo.events import command_outcome_keys, command_record, history_version, stored_command_outcomes
from infra.dynamo.keys import account_pk, balance_sk
from infra.dynamo.layout import LegacyRecords
from infra.dynamo.trading_keys import (
    ASSET_META_SK,
    ASSET_PRICE_SK,
    asset_pk,
    holding_sk,
)
from infra.dynamo.transactions import MAX_TRANSACTION_ITEMS, ItemGroup, get_items, write_groups
from schemas.envelope import Envelope
from schemas.money import decimal_to_str
from schemas.trading import is_symbol

# One item per order (its record) and at most one holding it adds; the balance.
_ITEMS_PER_ORDER: Final = 2


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
    max_commands_per_account = (MAX_TRANSACTION_ITEMS - 1) // _ITEMS_PER_ORDER

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self._legacy = LegacyRecords(client, table)

    async def load(self, messages: Sequence[Envelope[Any]]) -> Snapshot[TradingAccount]:
        # A malformed symbol can name no asset, and must not become part of a key (DynamoDB would refuse
        # an oversized one, and the message would fail forever instead of being rejected).
        traded = {(m.account_id, m.payload.asset) for m in messages if is_symbol(m.payload.asset)}
        assets = {asset for _, asset in traded}
        keys = [
            *((account_pk(m.account_id), balance_sk()) for m in messages),
            *((account_pk(a), holding_sk(asset)) for a, asset in traded),
            *((asset_pk(asset), sk) for asset in assets for sk in (ASSET_META_SK, ASSET_PRICE_SK)),
            *command_outcome_keys(HANDLER, messages, legacy_until := await self._legacy.until()),
        ]
        found = await get_items(self._client, self._table, keys)
        quotes = {asset: self._quote(found, asset) for asset in assets}
        states: dict[str, TradingAccount] = {}
        for account_id in {m.account_id for m in messages}:
            pk = account_pk(account_id)
            balance = found.get((pk, balance_sk()), {})
            holdings = {
                asset: Holding(as_decimal(item.get("quantity")), int(item["version"]))
                for a, asset in traded
                if a == account_id and (item := found.get((pk, holding_sk(asset))))
            }
            states[account_id] = TradingAccount(
                exists=bool(balance),
                available=as_decimal(balance.get("available")),
                balance_version=int(balance.get("version", 0)),
                holdings=holdings,
                quotes=quotes,
            )
        return Snapshot(states, stored_command_outcomes(HANDLER, messages, found, legacy_until))

    @staticmethod
    def _quote(found: dict[tuple[str, str], dict[str, Any]], asset: str) -> Quote:
        price = found.get((asset_pk(asset), ASSET_PRICE_SK), {}).get("price")
        return Quote(
            known=(asset_pk(asset), ASSET_META_SK) in found,
            price=as_decimal(price) if price is not None else None,
        )

    async def commit(
        self, plans: Sequence[AccountPlan[TradingAccount, OrderDecision]], topic: str
    ) -> frozenset[str]:
        groups = [ItemGroup(plan.account_id, self._items(plan, topic)) for plan in plans]
        return await write_groups(self._client, groups)

    def _items(self, plan: AccountPlan[TradingAccount, OrderDecision], topic: str) -> list[dict[str, Any]]:
        if len(plan.decisions) > self.max_commands_per_account:
            raise ValueError(f"{len(plan.decisions)} orders for one account exceed one transaction")
        items: list[dict[str, Any]] = []
        fills = [d for d in plan.decisions if d.settled]
        if fills:
            items.append(self._balance_update(plan, fills))
            items.extend(
                self._holding_update(plan, asset, fills) for asset in dict.fromkeys(d.asset for d in fills)
            )
        for decision in plan.decisions:
            (event,) = decision.events
            items.append(
                command_record(
                    self._table,
                    HANDLER,
                    decision.command_id,
                    decision.placed_at,
                    topic=topic,
                    event=event,
                    outcome="settled" if decision.settled else "rejected",
                    reason=decision.reason,
                    balance_version=history_version(decision.observed_balance_version, decision.settled),
                    order=order_record(decision),
                )
            )
        return items

    def _balance_update(
        self, plan: AccountPlan[TradingAccount, OrderDecision], fills: Sequence[OrderDecision]
    ) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"PK": to_attr(account_pk(plan.account_id)), "SK": to_attr(balance_sk())},
                "UpdateExpression": "SET available = :new, version = :next",
                "ConditionExpression": "version = :v AND available >= :minimum",
                "ExpressionAttributeValues": {
                    ":new": to_attr(plan.after.available),
                    ":next": to_attr(plan.after.balance_version),
                    ":v": to_attr(plan.before.balance_version),
                    ":minimum": to_attr(
                        least_start(-d.leg.cash if d.side == "buy" else d.leg.cash for d in fills if d.leg)
                    ),
                },
            }
        }

    def _holding_update(
        self, plan: AccountPlan[TradingAccount, OrderDecision], asset: str, fills: Sequence[OrderDecision]
    ) -> dict[str, Any]:
        before = plan.before.holdings.get(asset)
        after = plan.after.holdings[asset]
        key = {"PK": to_attr(account_pk(plan.account_id)), "SK": to_attr(holding_sk(asset))}
        values: dict[str, Any] = {
            ":new": to_attr(after.quantity),
            ":next": to_attr(after.version),
            ":asset": to_attr(asset),
        }
        if before is None:
            condition = "attribute_not_exists(version)"
        else:
            condition = "version = :v"
            values[":v"] = to_attr(before.version)
        least = least_start(d.quantity if d.side == "buy" else -d.quantity for d in fills if d.asset == asset)
        if least > 0:
            condition += " AND quantity >= :q"
            values[":q"] = to_attr(least)
        return {
            "Update": {
                "TableName": self._table,
                "Key": key,
                "UpdateExpression": "SET quantity = :new, version = :next, asset = :asset",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }
