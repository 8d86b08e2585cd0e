"""DynamoDB adapter of the ledger's settlement: a batch's accounts read at once, each account's decisions
written as one coalesced update of its balance item with their dedupe records and events.

Coalescing keeps every guarantee of one write per command. The balance item is updated once, conditioned
on the version read, to the balance and version the last decision left (each settlement bumps the version
by one, so the history positions the events record are those one-at-a-time settlement would give). The
day's totals live on the balance item too (`daily#<kind>#<day>` attributes), so the version pins them
with the balance, and a run of settlements writes one item for both. The money rules stay in the
condition: `available >=` the least starting balance that lets every debit of the run through, and each
day's total `<=` the least headroom any of the run's settlements left it.

Totals counted before they moved onto the balance item (`DAILY#<kind>#<day>` items) are still read, for a
day the balance item has no total of yet: an upgrade never forgets what a day already counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final

from consumers.common.settle import AccountPlan, Snapshot
from consumers.ledger.decisions import HANDLER, CashAccount, CashDecision, CashKind, command_day
from infra.dynamo.client import DynamoDBClient, as_decimal, to_attr
from infra.dynamo.coalesce import least_start
from infra.dynamo.events import command_outcome_keys, command_record, history_version, stored_command_outcomes
from infra.dynamo.keys import account_pk, balance_sk, daily_total_sk
from infra.dynamo.layout import LegacyRecords
from infra.dynamo.transactions import MAX_TRANSACTION_ITEMS, ItemGroup, get_items, write_groups
from schemas.commands import Deposit
from schemas.envelope import Envelope

# A day's totals are kept a while after it ends (a command accepted yesterday may settle today); older
# ones are dropped from the balance item by the next settlement that writes it.
DAILY_TOTALS_KEPT = timedelta(days=3)
# One item per command (its record) and the balance.
_ITEMS_PER_COMMAND: Final = 1
_ACCOUNT_ITEMS_RESERVED: Final = 1
_DAILY_PREFIX: Final = "daily#"


def daily_attribute(kind: CashKind, day: date) -> str:
    return f"{_DAILY_PREFIX}{kind}#{day.isoformat()}"


def _daily_counter(attribute: str) -> tuple[CashKind, date]:
    _, kind, day = attribute.split("#")
    return ("deposit" if kind == "deposit" else "withdrawal"), date.fromisoformat(day)


def _kind(message: Envelope[Any]) -> CashKind:
    return "deposit" if isinstance(message.payload, Deposit) else "withdrawal"


class DynamoLedgerStore:
    max_commands_per_account = (MAX_TRANSACTION_ITEMS - _ACCOUNT_ITEMS_RESERVED) // _ITEMS_PER_COMMAND

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self._legacy = LegacyRecords(client, table)

    def _key(self, account_id: str, sk: str) -> dict[str, Any]:
        return {"PK": to_attr(account_pk(account_id)), "SK": to_attr(sk)}

    async def load(self, messages: Sequence[Envelope[Any]]) -> Snapshot[CashAccount]:
        counters = {(m.account_id, _kind(m), command_day(m)) for m in messages}
        keys = [
            *((account_pk(m.account_id), balance_sk()) for m in messages),
            *((account_pk(a), daily_total_sk(k, d)) for a, k, d in counters),
            *command_outcome_keys(HANDLER, messages, legacy_until := await self._legacy.until()),
        ]
        found = await get_items(self._client, self._table, keys)
        states: dict[str, CashAccount] = {}
        for account_id in {m.account_id for m in messages}:
            balance = found.get((account_pk(account_id), balance_sk()), {})
            # Every total the balance item holds (the expired ones are dropped when it is next written).
            daily: dict[tuple[CashKind, date], Decimal] = {
                _daily_counter(name): as_decimal(total)
                for name, total in balance.items()
                if name.startswith(_DAILY_PREFIX)
            }
            for a, k, d in counters:
                legacy = found.get((account_pk(a), daily_total_sk(k, d))) if a == account_id else None
                if legacy is not None and (k, d) not in daily:
                    daily[(k, d)] = as_decimal(legacy.get("total"))
            states[account_id] = CashAccount(
                exists=bool(balance),
                available=as_decimal(balance.get("available")),
                version=int(balance.get("version", 0)),
                daily=daily,
            )
        return Snapshot(states, stored_command_outcomes(HANDLER, messages, found, legacy_until))

    async def commit(
        self, plans: Sequence[AccountPlan[CashAccount, CashDecision]], topic: str
    ) -> frozenset[str]:
        groups = [ItemGroup(plan.account_id, self._items(plan, topic)) for plan in plans]
        return await write_groups(self._client, groups)

    def _items(self, plan: AccountPlan[CashAccount, CashDecision], topic: str) -> list[dict[str, Any]]:
        if len(plan.decisions) > self.max_commands_per_account:
            raise ValueError(f"{len(plan.decisions)} commands for one account exceed one transaction")
        items = [self._balance_action(plan)]
        for decision in plan.decisions:
            (event,) = decision.events
            items.append(
                command_record(
                    self._table,
                    HANDLER,
                    decision.command_id,
                    decision.accepted_at,
                    topic=topic,
                    event=event,
                    outcome="settled" if decision.settled else "rejected",
                    reason=decision.reason,
                    balance_version=history_version(decision.expected_version or 0, decision.settled),
                )
            )
        return items

    def _balance_action(self, plan: AccountPlan[CashAccount, CashDecision]) -> dict[str, Any]:
        key = self._key(plan.account_id, balance_sk())
        before, after = plan.before, plan.after
        if not before.exists:
            # An unknown account's commands are only rejected while it still does not exist.
            return {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": key,
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        if after.version == before.version:
            return {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": key,
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": to_attr(before.version)},
                }
            }
        # The version pins the balance and totals we decided on. The money rules are stated in the
        # condition too, so that no writer skipping the version check could ever overdraw the account or
        # go over a day's limit.
        names: dict[str, str] = {}
        values: dict[str, Any] = {
            ":new": to_attr(after.available),
            ":next": to_attr(after.version),
            ":v": to_attr(before.version),
            ":minimum": to_attr(
                least_start(
                    d.amount if d.kind == "deposit" else -d.amount for d in plan.decisions if d.settled
                )
            ),
        }
        sets = ["available = :new", "version = :next"]
        conditions = ["version = :v", "available >= :minimum"]
        ceilings = _daily_ceilings(plan)
        for n, ((kind, day), ceiling) in enumerate(ceilings.items()):
            names[f"#d{n}"] = daily_attribute(kind, day)
            values[f":d{n}"] = to_attr(after.daily[(kind, day)])
            values[f":c{n}"] = to_attr(ceiling)
            sets.append(f"#d{n} = :d{n}")
            conditions.append(f"(attribute_not_exists(#d{n}) OR #d{n} <= :c{n})")
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
        }
        expired = [counter for counter in _expired_days(after) if counter not in ceilings]
        if expired:
            removes = []
            for n, (kind, day) in enumerate(expired):
                names[f"#x{n}"] = daily_attribute(kind, day)
                removes.append(f"#x{n}")
            update["UpdateExpression"] += " REMOVE " + ", ".join(removes)
        if names:
            update["ExpressionAttributeNames"] = names
        return {"Update": update}


def _expired_days(account: CashAccount) -> list[tuple[CashKind, date]]:
    """The totals on the balance item older than the newest day by more than `DAILY_TOTALS_KEPT`."""
    if not account.daily:
        return []
    newest = max(day for _, day in account.daily)
    return sorted(c for c in account.daily if c[1] < newest - DAILY_TOTALS_KEPT)


def _daily_ceilings(plan: AccountPlan[CashAccount, CashDecision]) -> dict[tuple[CashKind, date], Decimal]:
    """Per (kind, day) the run settles: the most the stored total may be before the run. A settlement i
    needs `total_before_i <= headroom_i`, where total_before_i = stored + what the run added before it;
    so the stored total must be <= headroom_i - added_before_i for every i."""
    added: dict[tuple[CashKind, date], Decimal] = {}
    ceiling: dict[tuple[CashKind, date], Decimal] = {}
    for decision in plan.decisions:
        if not decision.settled:
            continue
        assert decision.daily_headroom is not None
        counter = (decision.kind, decision.day)
        before = added.get(counter, Decimal(0))
        bound = decision.daily_headroom - before
        ceiling[counter] = min(ceiling.get(counter, bound), bound)
        added[counter] = before + decision.amount
    return ceiling
