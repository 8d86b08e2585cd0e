"""Commands: what a user asks for. Imperative names; each is the payload of an `Envelope`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from schemas.money import AssetQuantity, CashAmount


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str]


class Deposit(Command):
    TYPE: ClassVar[str] = "Deposit"
    KIND: ClassVar[str] = "deposit"

    amount: CashAmount


class Withdraw(Command):
    TYPE: ClassVar[str] = "Withdraw"
    KIND: ClassVar[str] = "withdrawal"

    amount: CashAmount


class PlaceOrder(Command):
    TYPE: ClassVar[str] = "PlaceOrder"
    KIND: ClassVar[str] = "order"

    side: Literal["buy", "sell"]
    asset: str
    quantity: AssetQuantity
    type: Literal["market"] = "market"


COMMAND_TYPES: dict[str, type[Command]] = {c.TYPE: c for c in (Deposit, Withdraw, PlaceOrder)}
