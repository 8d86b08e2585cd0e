"""The trading rules as pure functions: an order and the account's current state in, a decision out."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Literal

from schemas.commands import PlaceOrder
from schemas.envelope import Envelope
from schemas.events import Event, OrderFilled, OrderRejected, OrderRejectionReason, event_caused_by
from schemas.money import round_cost_up, round_proceeds_down, to_cents
from schemas.trading import trade_value

HANDLER = "trading"
Side = Literal["buy", "sell"]
# Wide enough that value x fee rate is exact.
_EXACT_DIGITS = 60


@dataclass(frozen=True)
class TradingRules:
    fee_rate: Decimal = Decimal(0)


@dataclass(frozen=True)
class OrderState:
    """What trading reads, in one consistent read, before deciding."""

    account_exists: bool
    available: Decimal
    balance_version: int
    holding: Decimal
    # None while the account has never held the asset (no holding item yet).
    holding_version: int | None
    asset_known: bool
    price: Decimal | None


@dataclass(frozen=True)
class Holding:
    quantity: Decimal
    # None while the account has never held the asset (no holding item yet).
    version: int | None


@dataclass(frozen=True)
class Quote:
    """What trading knows of an asset: whether it is listed, and its latest price (None: no tick yet)."""

    known: bool
    price: Decimal | None


NO_HOLDING = Holding(Decimal(0), None)
UNKNOWN_ASSET = Quote(False, None)


@dataclass(frozen=True)
class TradingAccount:
    """An account as trading settles a run of orders against it: the balance item, the holdings of the
    assets the run trades, and those assets' quotes (read once for the run, not owned by the account)."""

    exists: bool
    available: Decimal
    balance_version: int
    holdings: Mapping[str, Holding]
    quotes: Mapping[str, Quote]

    def state_for(self, asset: str) -> OrderState:
        holding = self.holdings.get(asset, NO_HOLDING)
        quote = self.quotes.get(asset, UNKNOWN_ASSET)
        return OrderState(
            account_exists=self.exists,
            available=self.available,
            balance_version=self.balance_version,
            holding=holding.quantity,
            holding_version=holding.version,
            asset_known=quote.known,
            price=quote.price,
        )


@dataclass(frozen=True)
class CashLeg:
    value: Decimal
    fee: Decimal
    cash: Decimal


@dataclass(frozen=True)
class OrderDecision:
    command_id: uuid.UUID
    account_id: str
    order_id: uuid.UUID
    side: Side
    asset: str
    quantity: Decimal
    placed_at: datetime
    decided_at: datetime
    reason: OrderRejectionReason | None
    price: Decimal | None
    leg: CashLeg | None
    # The balance version the decision saw: it places the outcome in the account's history.
    observed_balance_version: int
    # The versions the decision was made against: the writes are conditional on them.
    balance_version: int | None
    new_available: Decimal | None
    holding_version: int | None
    new_holding: Decimal | None
    events: tuple[Envelope[Event], ...]

    @property
    def settled(self) -> bool:
        return self.reason is None


def cash_leg(side: Side, quantity: Decimal, price: Decimal, fee_rate: Decimal) -> CashLeg:
    """A buy costs its value rounded up to the cent plus the fee; a sell yields its value rounded down
    less the fee. The fee itself rounds up. Every rounding goes against the trader, never the house."""
    value = trade_value(quantity, price)
    with localcontext() as ctx:
        ctx.prec = _EXACT_DIGITS
        fee = round_cost_up(value * fee_rate)
    if side == "buy":
        return CashLeg(value=value, fee=fee, cash=round_cost_up(value) + fee)
    return CashLeg(value=value, fee=fee, cash=max(Decimal("0.00"), round_proceeds_down(value) - fee))


def _reject(
    command: Envelope[PlaceOrder], state: OrderState, reason: OrderRejectionReason, now: datetime
) -> OrderDecision:
    order = command.payload
    payload = OrderRejected(
        command_id=command.id,
        order_id=command.id,
        side=order.side,
        asset=order.asset,
        quantity=order.quantity,
        reason=reason,
    )
    # A rejection changes no state, so it carries no version conditions: it is true of the consistent
    # snapshot it was decided on, which is the moment the order was handled.
    return OrderDecision(
        command_id=command.id,
        account_id=command.account_id,
        order_id=command.id,
        side=order.side,
        asset=order.asset,
        quantity=order.quantity,
        placed_at=command.occurred_at,
        decided_at=now,
        reason=reason,
        price=None,
        leg=None,
        observed_balance_version=state.balance_version,
        balance_version=None,
        new_available=None,
        holding_version=None,
        new_holding=None,
        events=(event_caused_by(command, payload, HANDLER, now),),
    )


def decide_order(
    command: Envelope[PlaceOrder], state: OrderState, rules: TradingRules, now: datetime
) -> OrderDecision:
    """Fill the whole market order at the latest price, or reject it with a stable reason."""
    order = command.payload
    if not state.asset_known:
        return _reject(command, state, "unknown_asset", now)
    if not state.account_exists:
        return _reject(command, state, "unknown_account", now)
    if state.price is None:
        return _reject(command, state, "no_price", now)
    leg = cash_leg(order.side, order.quantity, state.price, rules.fee_rate)
    if order.side == "buy":
        if state.available < leg.cash:
            return _reject(command, state, "insufficient_funds", now)
        new_available = to_cents(state.available - leg.cash)
        new_holding = state.holding + order.quantity
    else:
        if state.holding < order.quantity:
            return _reject(command, state, "insufficient_holdings", now)
        new_available = to_cents(state.available + leg.cash)
        new_holding = state.holding - order.quantity
    payload = OrderFilled(
        command_id=command.id,
        order_id=command.id,
        side=order.side,
        asset=order.asset,
        quantity=order.quantity,
        price=state.price,
        cash_amount=leg.cash,
        fee=leg.fee,
        balance_after=new_available,
        holding_after=new_holding,
    )
    return OrderDecision(
        command_id=command.id,
        account_id=command.account_id,
        order_id=command.id,
        side=order.side,
        asset=order.asset,
        quantity=order.quantity,
        placed_at=command.occurred_at,
        decided_at=now,
        reason=None,
        price=state.price,
        leg=leg,
        observed_balance_version=state.balance_version,
        balance_version=state.balance_version,
        new_available=new_available,
        holding_version=state.holding_version,
        new_holding=new_holding,
        events=(event_caused_by(command, payload, HANDLER, now),),
    )


def apply_order(
    command: Envelope[PlaceOrder], account: TradingAccount, rules: TradingRules, now: datetime
) -> tuple[OrderDecision, TradingAccount]:
    """Decides an order against the account, and the account once the decision took effect: a fill moves
    the cash and the holding and bumps both versions; a rejection changes nothing."""
    decision = decide_order(command, account.state_for(command.payload.asset), rules, now)
    if decision.new_available is None or decision.new_holding is None:
        return decision, account
    holding = account.holdings.get(decision.asset, NO_HOLDING)
    after = replace(
        account,
        available=decision.new_available,
        balance_version=account.balance_version + 1,
        holdings={
            **account.holdings,
            decision.asset: Holding(decision.new_holding, (holding.version or 0) + 1),
        },
    )
    return decision, after
