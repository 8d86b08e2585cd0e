"""The contract's topic table as code: which message types travel on which topic.

Consumers accept exactly these types per topic (anything else is dead-lettered), the AsyncAPI document
and the committed JSON Schemas (`schemas/jsonschema/`) are generated from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pydantic import BaseModel

from schemas.commands import Deposit, PlaceOrder, Withdraw
from schemas.events import BALANCE_EVENT_TYPES, ORDER_EVENT_TYPES, PORTFOLIO_EVENT_TYPES
from schemas.topics import (
    BALANCE_EVENTS,
    DEPOSIT_COMMANDS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PORTFOLIO_EVENTS,
    PRICES,
    WITHDRAWAL_COMMANDS,
)
from schemas.trading import PRICE_TICK_TYPES

TOPIC_MESSAGES: Final[Mapping[str, Mapping[str, type[BaseModel]]]] = {
    DEPOSIT_COMMANDS: {Deposit.TYPE: Deposit},
    WITHDRAWAL_COMMANDS: {Withdraw.TYPE: Withdraw},
    ORDER_COMMANDS: {PlaceOrder.TYPE: PlaceOrder},
    BALANCE_EVENTS: BALANCE_EVENT_TYPES,
    ORDER_EVENTS: ORDER_EVENT_TYPES,
    PORTFOLIO_EVENTS: PORTFOLIO_EVENT_TYPES,
    PRICES: PRICE_TICK_TYPES,
}


def message_types() -> dict[str, type[BaseModel]]:
    """Every message type of the contract, by its `type` name."""
    return {name: model for models in TOPIC_MESSAGES.values() for name, model in models.items()}


def version_of(model: type[BaseModel]) -> int:
    """The envelope `version` a payload model is written and read as."""
    return int(getattr(model, "VERSION", 1))
