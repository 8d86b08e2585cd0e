"""Reconciliation: every account's cash and holdings recomputed from its stored events.

The recomputation is a pure function of the event items; only `scan_accounts` does I/O. The scan is an
operator's tool, never a request path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from infra.dynamo.client import DynamoDBClient, as_decimal, from_item
from infra.dynamo.keys import ACCOUNT_PREFIX, EVENT_PREFIX, balance_sk
from infra.dynamo.trading_keys import HOLDING_PREFIX

BALANCE_SK = balance_sk()


@dataclass
class AccountItems:
    """What the scan found for one account: its event payloads by type, its balance and holdings."""

    events: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    balance: Decimal | None = None
    holdings: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Expected:
    cash: Decimal
    holdings: dict[str, Decimal]


@dataclass(frozen=True)
class Mismatch:
    account_id: str
    what: str
    stored: Decimal | None
    expected: Decimal


@dataclass
class Report:
    accounts: int = 0
    events: int = 0
    holdings_checked: int = 0
    duplicate_event_ids: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)


def expected_from_events(events: Iterable[tuple[str, Mapping[str, Any]]]) -> Expected:
    """Cash and holdings implied by the settled events (payloads in JSON mode: decimal strings)."""
    cash = Decimal(0)
    holdings: dict[str, Decimal] = defaultdict(Decimal)
    for event_type, payload in events:
        if event_type == "DepositSettled":
            cash += Decimal(str(payload["amount"]))
        elif event_type == "WithdrawalSettled":
            cash -= Decimal(str(payload["amount"]))
        elif event_type == "OrderFilled":
            amount = Decimal(str(payload["cash_amount"]))
            quantity = Decimal(str(payload["quantity"]))
            asset = str(payload["asset"])
            if payload["side"] == "buy":
                cash -= amount
                holdings[asset] += quantity
            else:
                cash += amount
                holdings[asset] -= quantity
    return Expected(cash, dict(holdings))


def compare(account_id: str, items: AccountItems) -> list[Mismatch]:
    expected = expected_from_events(items.events)
    found: list[Mismatch] = []
    if items.balance is None:
        if items.events:
            found.append(Mismatch(account_id, "cash (no balance item)", None, expected.cash))
    elif items.balance != expected.cash:
        found.append(Mismatch(account_id, "cash", items.balance, expected.cash))
    for asset in sorted(set(expected.holdings) | set(items.holdings)):
        stored = items.holdings.get(asset)
        wanted = expected.holdings.get(asset, Decimal(0))
        if (stored if stored is not None else Decimal(0)) != wanted:
            found.append(Mismatch(account_id, f"holding {asset}", stored, wanted))
    return found


def reconcile(accounts: Mapping[str, AccountItems]) -> Report:
    report = Report(accounts=len(accounts))
    for account_id in sorted(accounts):
        items = accounts[account_id]
        report.events += len(items.events)
        report.holdings_checked += len(items.holdings)
        report.duplicate_event_ids += len(items.event_ids) - len(set(items.event_ids))
        report.mismatches.extend(compare(account_id, items))
    return report


async def scan_pages(client: DynamoDBClient, table: str) -> AsyncIterator[list[dict[str, Any]]]:
    """The items reconciliation reads, a page at a time (balances, holdings and events only)."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": (
            "begins_with(PK, :account) AND (SK = :balance OR begins_with(SK, :holding) "
            "OR begins_with(SK, :event))"
        ),
        "ExpressionAttributeValues": {
            ":account": {"S": ACCOUNT_PREFIX},
            ":balance": {"S": BALANCE_SK},
            ":holding": {"S": HOLDING_PREFIX},
            ":event": {"S": EVENT_PREFIX},
        },
        "ConsistentRead": True,
    }
    while True:
        page = await client.scan(**kwargs)
        yield [from_item(item) for item in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def add_item(accounts: dict[str, AccountItems], item: Mapping[str, Any]) -> None:
    account_id = str(item["PK"]).removeprefix(ACCOUNT_PREFIX)
    sk = str(item["SK"])
    entry = accounts.setdefault(account_id, AccountItems())
    if sk == BALANCE_SK:
        entry.balance = as_decimal(item.get("available"))
    elif sk.startswith(HOLDING_PREFIX):
        entry.holdings[sk.removeprefix(HOLDING_PREFIX)] = as_decimal(item.get("quantity"))
    elif sk.startswith(EVENT_PREFIX):
        entry.events.append((str(item.get("type")), item.get("payload") or {}))
        entry.event_ids.append(str(item.get("event_id")))
