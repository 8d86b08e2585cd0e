"""DynamoDB adapter of the ledger: one consistent read, one `TransactWriteItems` per decision."""

from __future__ import annotations

import calendar
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from consumers.common.ports import CommitResult, StoredOutcome
from consumers.ledger.decisions import HANDLER, CashAccountState, CashDecision, CashKind
from consumers.ledger.ports import LoadedCashState
from infra.dynamo.client import DynamoDBClient, as_decimal, from_item, to_attr
from infra.dynamo.events import event_put, history_version, outcome_record
from infra.dynamo.keys import account_pk, balance_sk, command_sk, daily_total_sk
from infra.dynamo.transactions import commit_guarded

# Counters outlive their day by a margin so that operators can still read yesterday's totals.
DAILY_COUNTER_TTL = timedelta(days=3)


class DynamoLedgerStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, account_id: str, sk: str) -> dict[str, Any]:
        return {"PK": to_attr(account_pk(account_id)), "SK": to_attr(sk)}

    async def load(
        self, account_id: str, command_id: uuid.UUID, kind: CashKind, day: date
    ) -> LoadedCashState:
        keys = (balance_sk(), daily_total_sk(kind, day), command_sk(HANDLER, command_id))
        response = await self._client.transact_get_items(
            TransactItems=[
                {"Get": {"TableName": self._table, "Key": self._key(account_id, sk)}} for sk in keys
            ]
        )
        balance, daily, record = (from_item(r.get("Item") or {}) for r in response["Responses"])
        state = CashAccountState(
            exists=bool(balance),
            available=as_decimal(balance.get("available")),
            version=int(balance.get("version", 0)),
            daily_total=as_decimal(daily.get("total")),
        )
        outcome = None
        if record:
            outcome = StoredOutcome(
                topic=str(record["topic"]), events=tuple(str(e).encode() for e in record.get("events", []))
            )
        return LoadedCashState(state=state, outcome=outcome)

    async def commit(self, decision: CashDecision, topic: str) -> CommitResult:
        pk = account_pk(decision.account_id)
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
            self._balance_action(decision),
        ]
        if decision.settled:
            items.append(self._daily_counter_update(decision))
        position = history_version(decision.expected_version or 0, decision.settled)
        items.extend(event_put(self._table, pk, e, position) for e in decision.events)
        return await commit_guarded(self._client, items)

    def _balance_action(self, decision: CashDecision) -> dict[str, Any]:
        key = self._key(decision.account_id, balance_sk())
        if decision.expected_version is None:
            # An unknown account is only rejected while it still does not exist.
            return {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": key,
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        if decision.new_available is None:
            return {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": key,
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": to_attr(decision.expected_version)},
                }
            }
        # The version pins the balance we decided on. For a debit the money rule itself is stated in the
        # condition too, so no writer that skips the version check could ever overdraw the account.
        minimum = decision.amount if decision.kind == "withdrawal" else Decimal(0)
        return {
            "Update": {
                "TableName": self._table,
                "Key": key,
                "UpdateExpression": "SET available = :new, version = :next",
                "ConditionExpression": "version = :v AND available >= :minimum",
                "ExpressionAttributeValues": {
                    ":new": to_attr(decision.new_available),
                    ":next": to_attr(decision.expected_version + 1),
                    ":v": to_attr(decision.expected_version),
                    ":minimum": to_attr(minimum),
                },
            }
        }

    def _daily_counter_update(self, decision: CashDecision) -> dict[str, Any]:
        assert decision.daily_headroom is not None
        expires = calendar.timegm((decision.day + DAILY_COUNTER_TTL).timetuple())
        return {
            "Update": {
                "TableName": self._table,
                "Key": self._key(decision.account_id, daily_total_sk(decision.kind, decision.day)),
                "UpdateExpression": "ADD #total :amount SET expires_at = :expires",
                "ConditionExpression": "attribute_not_exists(#total) OR #total <= :headroom",
                "ExpressionAttributeNames": {"#total": "total"},
                "ExpressionAttributeValues": {
                    ":amount": to_attr(decision.amount),
                    ":headroom": to_attr(decision.daily_headroom),
                    ":expires": to_attr(expires),
                },
            }
        }
