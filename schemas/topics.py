"""Kafka topic names of the contract."""

from typing import Final

DEPOSIT_COMMANDS: Final = "commands.deposit"
WITHDRAWAL_COMMANDS: Final = "commands.withdrawal"
ORDER_COMMANDS: Final = "commands.order"
BALANCE_EVENTS: Final = "events.balance"
ORDER_EVENTS: Final = "events.order"
PORTFOLIO_EVENTS: Final = "events.portfolio"
PRICES: Final = "prices"

COMMAND_TOPICS: Final = (DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS, ORDER_COMMANDS)
EVENT_TOPICS: Final = (BALANCE_EVENTS, ORDER_EVENTS, PORTFOLIO_EVENTS)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


ALL_TOPICS: Final = (
    *COMMAND_TOPICS,
    *EVENT_TOPICS,
    PRICES,
    *(dead_letter_topic(t) for t in (*COMMAND_TOPICS, *EVENT_TOPICS, PRICES)),
)
