"""The settlement store port's contract, written once and run against the in-memory fakes and the
DynamoDB adapters on DynamoDB Local, so the fakes the unit and property tests rely on cannot drift from
the real conditions: whole-or-nothing per account, version conflicts, duplicates, the 100-item and
100-key limits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from consumers.common.settle import AccountPlan, Snapshot
from consumers.ledger.decisions import CashLimits, apply_cash
from consumers.ledger.ports import LedgerStore
from consumers.trading.decisions import TradingRules, apply_order
from consumers.trading.ports import TradingStore
from infra.dynamo.client import DynamoDBClient, as_decimal, dynamodb_client, from_item, to_attr, to_item
from infra.dynamo.command_statuses import DynamoCommandStatuses
from infra.dynamo.keys import COMMAND_INDEX_KEY, account_pk, balance_sk, command_sk, daily_total_sk, event_sk
from infra.dynamo.layout import LegacyRecords
from infra.dynamo.ledger_store import DynamoLedgerStore, daily_attribute
from infra.dynamo.orders import DynamoOrders
from infra.dynamo.table import ensure_table
from infra.dynamo.trading_keys import ASSET_META_SK, ASSET_PRICE_SK, asset_pk, holding_sk
from infra.dynamo.trading_store import DynamoTradingStore, order_record
from infra.settings import Settings
from producers.commands import envelope_for
from schemas.commands import Deposit, PlaceOrder, Withdraw
from schemas.envelope import Envelope
from schemas.topics import BALANCE_EVENTS, ORDER_EVENTS
from tests.support.settlement import FakeLedgerStore, FakeTradingStore
from tests.support.tables import older_table

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
LIMITS = CashLimits(Decimal("10000"), Decimal("5000"))
RULES = TradingRules()


class Backend:
    """One store under test, and the direct access a test needs to set the scene and look at it."""

    ledger: LedgerStore
    trading: TradingStore

    async def open_account(self, account_id: str, available: str) -> None: ...

    async def balance(self, account_id: str) -> tuple[Decimal, int] | None: ...

    async def holding(self, account_id: str, asset: str) -> tuple[Decimal, int] | None: ...

    async def move(self, account_id: str, change: str) -> None:
        """Another writer's settlement on the account (say, a trade while the ledger decides)."""

    async def list_asset(self, asset: str, price: str) -> None: ...


class FakeBackend(Backend):
    def __init__(self) -> None:
        self.ledger_fake = FakeLedgerStore()
        self.trading_fake = FakeTradingStore(balances=self.ledger_fake.balances)
        self.ledger, self.trading = self.ledger_fake, self.trading_fake

    async def open_account(self, account_id: str, available: str) -> None:
        self.ledger_fake.open_account(account_id, Decimal(available))

    async def balance(self, account_id: str) -> tuple[Decimal, int] | None:
        return self.ledger_fake.balances.get(account_id)

    async def holding(self, account_id: str, asset: str) -> tuple[Decimal, int] | None:
        return self.trading_fake.holdings.get((account_id, asset))

    async def move(self, account_id: str, change: str) -> None:
        available, version = self.ledger_fake.balances[account_id]
        self.ledger_fake.balances[account_id] = (available + Decimal(change), version + 1)

    async def list_asset(self, asset: str, price: str) -> None:
        self.trading_fake.prices[asset] = Decimal(price)


class DynamoBackend(Backend):
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client, self.table = client, table
        self.ledger = DynamoLedgerStore(client, table)
        self.trading = DynamoTradingStore(client, table)

    async def _get(self, pk: str, sk: str) -> dict[str, Any]:
        response = await self.client.get_item(
            TableName=self.table, Key={"PK": to_attr(pk), "SK": to_attr(sk)}, ConsistentRead=True
        )
        return from_item(response.get("Item") or {})

    async def open_account(self, account_id: str, available: str) -> None:
        item = {
            "PK": account_pk(account_id),
            "SK": balance_sk(),
            "available": Decimal(available),
            "version": 0,
        }
        await self.client.put_item(TableName=self.table, Item=to_item(item))

    async def balance(self, account_id: str) -> tuple[Decimal, int] | None:
        item = await self._get(account_pk(account_id), balance_sk())
        return (as_decimal(item["available"]), int(item["version"])) if item else None

    async def holding(self, account_id: str, asset: str) -> tuple[Decimal, int] | None:
        item = await self._get(account_pk(account_id), holding_sk(asset))
        return (as_decimal(item["quantity"]), int(item["version"])) if item else None

    async def move(self, account_id: str, change: str) -> None:
        await self.client.update_item(
            TableName=self.table,
            Key={"PK": to_attr(account_pk(account_id)), "SK": to_attr(balance_sk())},
            UpdateExpression="SET available = available + :c, version = version + :one",
            ExpressionAttributeValues={":c": to_attr(Decimal(change)), ":one": to_attr(1)},
        )

    async def list_asset(self, asset: str, price: str) -> None:
        for sk, values in ((ASSET_META_SK, {"name": asset}), (ASSET_PRICE_SK, {"price": Decimal(price)})):
            await self.client.put_item(
                TableName=self.table, Item=to_item({"PK": asset_pk(asset), "SK": sk, **values})
            )


@pytest.fixture(params=["fake", "dynamodb"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "fake":
        yield FakeBackend()
        return
    settings: Settings = request.getfixturevalue("settings")
    async with dynamodb_client(settings) as client:
        await ensure_table(client, settings.dynamodb_table)
        yield DynamoBackend(client, settings.dynamodb_table)


def _account() -> str:
    return f"contract-{uuid.uuid4().hex[:12]}"


def _cash(kind: str, account: str, amount: str) -> Envelope[Any]:
    payload = Deposit(amount=Decimal(amount)) if kind == "deposit" else Withdraw(amount=Decimal(amount))
    return envelope_for(payload, account)


def _order(side: str, account: str, asset: str, quantity: str) -> Envelope[Any]:
    return envelope_for(
        PlaceOrder.model_validate({"side": side, "asset": asset, "quantity": quantity}), account
    )


def _plans(
    snapshot: Snapshot[Any], messages: Sequence[Envelope[Any]], decide: Any
) -> list[AccountPlan[Any, Any]]:
    """What the loop would plan: each account's messages decided in order against its state."""
    plans = []
    for account_id in dict.fromkeys(m.account_id for m in messages):
        before = state = snapshot.states[account_id]
        decisions = []
        for message in (m for m in messages if m.account_id == account_id):
            decision, state = decide(message, state)
            decisions.append(decision)
        plans.append(AccountPlan(account_id, before, state, tuple(decisions)))
    return plans


def _cash_decide(message: Envelope[Any], state: Any) -> Any:
    return apply_cash(message, state, LIMITS, NOW)


def _order_decide(message: Envelope[Any], state: Any) -> Any:
    return apply_order(message, state, RULES, NOW)


@dataclass
class Settled:
    plans: list[AccountPlan[Any, Any]]
    refused: frozenset[str]


async def _settle_cash(
    backend: Backend, messages: Sequence[Envelope[Any]], *, between: Any = None
) -> Settled:
    snapshot = await backend.ledger.load(messages)
    plans = _plans(snapshot, messages, _cash_decide)
    if between is not None:
        await between()
    return Settled(plans, await backend.ledger.commit(plans, BALANCE_EVENTS))


# ------------------------------------------------------------------------------------------- ledger


async def test_unknown_accounts_load_as_absent_and_nothing_is_recorded(backend: Backend) -> None:
    message = _cash("deposit", _account(), "1")
    snapshot = await backend.ledger.load([message])
    assert not snapshot.states[message.account_id].exists
    assert snapshot.outcomes == {}


async def test_a_run_commits_as_one_coalesced_write_and_records_each_command(backend: Backend) -> None:
    account = _account()
    await backend.open_account(account, "10")
    messages = [
        _cash("deposit", account, "5"),
        _cash("withdrawal", account, "12"),
        _cash("withdrawal", account, "99"),
    ]
    settled = await _settle_cash(backend, messages)
    assert settled.refused == frozenset()
    assert await backend.balance(account) == (Decimal("3.00"), 2)
    snapshot = await backend.ledger.load(messages)
    state = snapshot.states[account]
    assert (state.available, state.version) == (Decimal("3.00"), 2)
    assert dict(state.daily) == {
        ("deposit", messages[0].occurred_at.date()): Decimal("5"),
        ("withdrawal", messages[0].occurred_at.date()): Decimal("12"),
    }
    for message, decision in zip(messages, settled.plans[0].decisions, strict=True):
        stored = snapshot.outcomes[message.id]
        assert stored.topic == BALANCE_EVENTS
        assert [Envelope[Any].model_validate_json(e).id for e in stored.events] == [
            e.id for e in decision.events
        ]


async def test_a_command_recorded_meanwhile_refuses_its_account_whole(backend: Backend) -> None:
    account = _account()
    await backend.open_account(account, "10")
    first = _cash("deposit", account, "1")
    stale = await backend.ledger.load([first])
    await _settle_cash(backend, [first])
    # A second delivery decided on the snapshot from before the first one committed.
    again = _plans(stale, [first, _cash("deposit", account, "2")], _cash_decide)
    assert await backend.ledger.commit(again, BALANCE_EVENTS) == frozenset({account})
    assert await backend.balance(account) == (Decimal("11.00"), 1)


async def test_a_moved_balance_refuses_only_its_own_account(backend: Backend) -> None:
    moved, other = _account(), _account()
    await backend.open_account(moved, "10")
    await backend.open_account(other, "10")
    messages = [_cash("withdrawal", moved, "4"), _cash("withdrawal", other, "4")]

    async def trade() -> None:
        await backend.move(moved, "-9")

    settled = await _settle_cash(backend, messages, between=trade)
    assert settled.refused == frozenset({moved})
    assert await backend.balance(moved) == (Decimal("1"), 1)
    assert await backend.balance(other) == (Decimal("6.00"), 1)
    assert (await backend.ledger.load([messages[0]])).outcomes == {}


async def test_rejections_hold_only_while_the_balance_is_as_read(backend: Backend) -> None:
    account, unknown = _account(), _account()
    await backend.open_account(account, "1")
    messages = [_cash("withdrawal", account, "5"), _cash("deposit", unknown, "5")]

    async def meanwhile() -> None:
        await backend.move(account, "10")
        await backend.open_account(unknown, "0")

    settled = await _settle_cash(backend, messages, between=meanwhile)
    assert settled.refused == frozenset({account, unknown})


async def test_many_accounts_beyond_one_transaction_all_commit(backend: Backend) -> None:
    accounts = [_account() for _ in range(60)]
    for account in accounts:
        await backend.open_account(account, "0")
    # 60 accounts x (balance, counter, record, event) = 240 items and 180 keys to read.
    messages = [_cash("deposit", a, "2") for a in accounts]
    settled = await _settle_cash(backend, messages)
    assert settled.refused == frozenset()
    snapshot = await backend.ledger.load(messages)
    assert len(snapshot.outcomes) == 60
    assert {(s.available, s.version) for s in snapshot.states.values()} == {(Decimal("2.00"), 1)}


async def test_one_account_holds_at_most_the_store_limit_per_transaction(backend: Backend) -> None:
    account = _account()
    await backend.open_account(account, "0")
    limit = backend.ledger.max_commands_per_account
    messages = [_cash("deposit", account, "1") for _ in range(limit + 1)]
    snapshot = await backend.ledger.load(messages)
    with pytest.raises(ValueError):
        await backend.ledger.commit(_plans(snapshot, messages, _cash_decide), BALANCE_EVENTS)
    assert (
        await backend.ledger.commit(_plans(snapshot, messages[:limit], _cash_decide), BALANCE_EVENTS)
        == frozenset()
    )
    assert await backend.balance(account) == (Decimal(limit), limit)


# ------------------------------------------------------------------------------------------ trading


async def _settle_orders(
    backend: Backend, messages: Sequence[Envelope[Any]], *, between: Any = None
) -> frozenset[str]:
    snapshot = await backend.trading.load(messages)
    plans = _plans(snapshot, messages, _order_decide)
    if between is not None:
        await between()
    return await backend.trading.commit(plans, ORDER_EVENTS)


async def test_fills_coalesce_cash_and_holdings_and_duplicates_are_refused(backend: Backend) -> None:
    account, asset = _account(), "CT" + uuid.uuid4().hex[:6].upper()
    await backend.open_account(account, "100")
    await backend.list_asset(asset, "10")
    messages = [
        _order("buy", account, asset, "3"),
        _order("sell", account, asset, "1"),
        _order("sell", account, asset, "5"),
    ]
    snapshot = await backend.trading.load(messages)
    plans = _plans(snapshot, messages, _order_decide)
    assert [d.reason for d in plans[0].decisions] == [None, None, "insufficient_holdings"]
    assert await backend.trading.commit(plans, ORDER_EVENTS) == frozenset()
    assert await backend.balance(account) == (Decimal("80.00"), 2)
    assert await backend.holding(account, asset) == (Decimal("2"), 2)
    assert set((await backend.trading.load(messages)).outcomes) == {m.id for m in messages}
    assert await backend.trading.commit(plans, ORDER_EVENTS) == frozenset({account})


async def test_a_moved_holding_or_balance_refuses_fills_but_not_rejections(backend: Backend) -> None:
    filled, rejected, asset = _account(), _account(), "CT" + uuid.uuid4().hex[:6].upper()
    await backend.open_account(filled, "100")
    await backend.open_account(rejected, "1")
    await backend.list_asset(asset, "10")
    messages = [_order("buy", filled, asset, "1"), _order("buy", rejected, asset, "1")]

    async def meanwhile() -> None:
        await backend.move(filled, "5")
        await backend.move(rejected, "5")

    # The rejection was true of the balance it read, so it stands; the fill was decided on a stale one.
    assert await _settle_orders(backend, messages, between=meanwhile) == frozenset({filled})
    assert await backend.holding(filled, asset) is None


# ------------------------------------------------------------------------- DynamoDB layout only


async def test_daily_totals_live_on_the_balance_item_and_older_counters_still_count(
    settings: Settings,
) -> None:
    """Totals counted by a `DAILY#` item (before they moved onto the balance item) are not forgotten."""
    async with dynamodb_client(settings) as client:
        await ensure_table(client, settings.dynamodb_table)
        backend = DynamoBackend(client, settings.dynamodb_table)
        account = _account()
        await backend.open_account(account, "0")
        over = _cash("deposit", account, "20")
        day = over.occurred_at.astimezone(UTC).date()
        await client.put_item(
            TableName=settings.dynamodb_table,
            Item=to_item(
                {"PK": account_pk(account), "SK": daily_total_sk("deposit", day), "total": Decimal(9990)}
            ),
        )
        settled = await _settle_cash(backend, [over])
        assert settled.plans[0].decisions[0].reason == "daily_limit_exceeded"
        within = _cash("deposit", account, "10")
        settled = await _settle_cash(backend, [within])
        assert settled.refused == frozenset() and settled.plans[0].decisions[0].settled
        item = await client.get_item(
            TableName=settings.dynamodb_table,
            Key={"PK": to_attr(account_pk(account)), "SK": to_attr(balance_sk())},
            ConsistentRead=True,
        )
        balance = from_item(item["Item"])
        assert balance[daily_attribute("deposit", day)] == Decimal(10000)
        assert (await backend.ledger.load([over])).states[account].daily == {("deposit", day): Decimal(10000)}


async def _account_items(client: DynamoDBClient, table: str, account: str) -> list[str]:
    response = await client.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": to_attr(account_pk(account))},
        ConsistentRead=True,
    )
    return sorted(str(i["SK"]["S"]).split("#")[0] for i in response.get("Items", []))


async def test_a_command_leaves_one_item_which_is_its_event_status_and_order(settings: Settings) -> None:
    """A fresh table holds no records of the older layout, so none are looked for; each command's one
    item is found by its acceptance time (the intake's record) and by the command-id index."""
    async with dynamodb_client(settings) as client:
        table = settings.dynamodb_table
        await ensure_table(client, table)
        assert await LegacyRecords(client, table).until() == datetime(1970, 1, 1, tzinfo=UTC)
        backend = DynamoBackend(client, table)
        account, asset = _account(), "CT" + uuid.uuid4().hex[:6].upper()
        await backend.open_account(account, "0")
        await backend.list_asset(asset, "10")
        deposit = _cash("deposit", account, "100")
        assert (await _settle_cash(backend, [deposit])).refused == frozenset()
        buy, oversell = _order("buy", account, asset, "2"), _order("sell", account, asset, "5")
        assert await _settle_orders(backend, [buy, oversell]) == frozenset()
        assert await _account_items(client, table, account) == [
            "BALANCE",
            "EVENT",
            "EVENT",
            "EVENT",
            "HOLDING",
        ]

        statuses, orders = DynamoCommandStatuses(client, table), DynamoOrders(client, table)
        for message, status in ((deposit, "settled"), (buy, "settled"), (oversell, "rejected")):
            by_time = await statuses.settled(account, message.id, message.occurred_at)
            by_index = await statuses.settled(account, message.id, None)
            assert by_time is not None and by_time == by_index and by_time.status == status
            assert await statuses.settled(_account(), message.id, message.occurred_at) is None
        order = await orders.get(account, buy.id)
        assert order is not None and order["status"] == "filled" and order["quantity"] == "2"
        first = await orders.page(account, 1, None)
        assert [o["order_id"] for o in first.items] == [str(oversell.id)] and first.next_cursor
        rest = await orders.page(account, 5, first.next_cursor)
        assert [o["order_id"] for o in rest.items] == [str(buy.id)] and rest.next_cursor is None


async def test_commands_settled_under_the_older_layout_stay_settled(settings: Settings) -> None:
    """A table made by an older version holds `COMMAND#<handler>#<id>` dedupe records (an order's details
    on it, its event on an item of its own): a redelivered command is still a duplicate, and its status
    and order are still read."""
    async with dynamodb_client(settings) as client, older_table(client) as table:
        await ensure_table(client, table)
        assert await LegacyRecords(client, table).until() > datetime.now(UTC)
        backend = DynamoBackend(client, table)
        account, asset = _account(), "CT" + uuid.uuid4().hex[:6].upper()
        await backend.open_account(account, "100")
        await backend.list_asset(asset, "10")
        deposit, buy = _cash("deposit", account, "5"), _order("buy", account, asset, "1")
        cash = _plans(await backend.ledger.load([deposit]), [deposit], _cash_decide)[0].decisions[0]
        fill = _plans(await backend.trading.load([buy]), [buy], _order_decide)[0].decisions[0]
        pk = account_pk(account)
        older = [
            {"SK": command_sk("ledger", deposit.id), "topic": BALANCE_EVENTS, "events": cash.events},
            {
                "SK": command_sk("trading", buy.id),
                "topic": ORDER_EVENTS,
                "events": fill.events,
                **order_record(fill),
            },
        ]
        for record in older:
            events = record.pop("events")
            item = {"PK": pk, **record, "events": [e.to_json() for e in events], "outcome": "settled"}
            item |= {COMMAND_INDEX_KEY: str(events[0].causation_id), "reason": None}
            await client.put_item(TableName=table, Item=to_item(item))
        event = fill.events[0]
        await client.put_item(
            TableName=table,
            Item=to_item(
                {
                    "PK": pk,
                    "SK": event_sk(event.occurred_at, event.id),
                    "event_id": str(event.id),
                    "type": event.type,
                    "causation_id": str(buy.id),
                    "payload": event.payload.model_dump(mode="json"),
                }
            ),
        )

        assert set((await backend.ledger.load([deposit])).outcomes) == {deposit.id}
        assert set((await backend.trading.load([buy])).outcomes) == {buy.id}
        statuses, orders = DynamoCommandStatuses(client, table), DynamoOrders(client, table)
        status = await statuses.settled(account, buy.id, buy.occurred_at)
        assert status is not None and status.status == "settled"
        order = await orders.get(account, buy.id)
        assert order is not None and order["order_id"] == str(buy.id)
        assert [o["order_id"] for o in (await orders.page(account, 10, None)).items] == [str(buy.id)]
