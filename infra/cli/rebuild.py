"""Rebuilding a read model from its topics, from the beginning, while the API keeps serving.

The portfolio is the one read model apart from the settlement that feeds it (a command's status is the
ledger's or trading's own outcome record: nothing to rebuild). It is built aside in memory with the
projection's own pure functions (`apply_fill`), then switched account by account: one transaction per
account replaces its positions, so a reader sees either the old or the rebuilt portfolio of an account,
never a mix. The fill dedupe records are written too and the `portfolio` group's offsets are set to where
the rebuild read up to, so the restarted consumer continues exactly after it. Needs the portfolio
consumer stopped.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from consumers.common.inbound import MalformedMessage, parse_envelope
from consumers.portfolio.positions import HANDLER as PORTFOLIO_HANDLER
from consumers.portfolio.positions import Oversold, Position, PositionState, decide_position
from infra.cli import broker
from infra.cli.errors import CliError
from infra.cli.replay import refuse_if_active
from infra.dynamo.client import DynamoDBClient, from_item, to_attr, to_item
from infra.dynamo.events import outcome_record
from infra.dynamo.keys import account_pk, command_sk
from infra.dynamo.trading_keys import POSITION_PREFIX, position_sk
from infra.settings import Settings
from schemas.envelope import Envelope, utc_now
from schemas.events import ORDER_EVENT_TYPES, OrderFilled
from schemas.topics import ORDER_EVENTS, PORTFOLIO_EVENTS

Progress = Callable[[int], None]
PORTFOLIO_GROUP = "portfolio"
_IN_FLIGHT = 16


@dataclass
class RebuildResult:
    read: int = 0
    applied: int = 0
    skipped: int = 0
    accounts: int = 0
    details: dict[str, int] = field(default_factory=dict)


async def snapshot_ends(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    async with broker.admin_client(settings) as admin, broker.reader(settings) as consumer:
        existing = set(await broker.list_topics(admin))
        return await broker.topic_ends(consumer, [t for t in topics if t in existing], settings)


PORTFOLIO_TOPICS = [ORDER_EVENTS]


@dataclass
class _Built:
    positions: dict[str, Position] = field(default_factory=dict)
    # Per fill: the dedupe record the consumer would have written (its PositionChanged events).
    applied: list[tuple[uuid.UUID, tuple[Envelope[Any], ...]]] = field(default_factory=list)


async def rebuild_portfolio(
    settings: Settings,
    client: DynamoDBClient,
    ends: Mapping[TopicPartition, int],
    progress: Progress,
) -> RebuildResult:
    await refuse_if_active(settings, PORTFOLIO_GROUP)
    result = RebuildResult()
    built: dict[str, _Built] = defaultdict(_Built)
    seen: set[uuid.UUID] = set()
    async with broker.reader(settings) as consumer:
        async for record in broker.read_all(consumer, ends, settings):
            result.read += 1
            progress(1)
            try:
                event = parse_envelope(
                    record.value, ORDER_EVENT_TYPES, max_bytes=settings.kafka_max_message_bytes
                )
            except MalformedMessage:
                result.skipped += 1
                continue
            # A fill published twice (a redelivered order republishes it) counts once, as in the consumer.
            if not isinstance(event.payload, OrderFilled) or event.id in seen:
                continue
            seen.add(event.id)
            account = built[event.account_id]
            current = account.positions.get(event.payload.asset, Position())
            try:
                decision = decide_position(event, PositionState(current, None), utc_now())
            except Oversold as exc:
                raise CliError(f"events.order is inconsistent for account {event.account_id}: {exc}") from exc
            account.positions[event.payload.asset] = decision.position
            account.applied.append((event.id, decision.events))
            result.applied += 1
    for account_id, account in built.items():
        await _switch_positions(settings, client, account_id, account)
    result.accounts = len(built)
    await broker.commit_as_group(
        settings, PORTFOLIO_GROUP, dict(ends), max(30.0, 4 * settings.kafka_session_timeout_ms / 1000)
    )
    return result


async def _switch_positions(
    settings: Settings, client: DynamoDBClient, account_id: str, account: _Built
) -> None:
    table = settings.dynamodb_table
    pk = account_pk(account_id)
    # Dedupe records first: were the switch interrupted, the consumer would still skip these fills.
    puts = []
    for source_event_id, events in account.applied:
        record = outcome_record(
            table,
            pk,
            command_sk(PORTFOLIO_HANDLER, source_event_id),
            topic=PORTFOLIO_EVENTS,
            events=events,
            outcome="applied",
            reason=None,
        )
        puts.append({"PutRequest": {"Item": record["Put"]["Item"]}})
    for start in range(0, len(puts), 25):
        pending: dict[str, Any] = {table: puts[start : start + 25]}
        while pending:
            response = await client.batch_write_item(RequestItems=pending)
            pending = dict(response.get("UnprocessedItems") or {})
    existing = await _positions(client, table, pk)
    writes: list[dict[str, Any]] = []
    for asset, position in sorted(account.positions.items()):
        version = int(existing.get(asset, {}).get("version", 0)) + 1
        writes.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": to_item(
                        {
                            "PK": pk,
                            "SK": position_sk(asset),
                            "asset": asset,
                            "quantity": position.quantity or 0,
                            "average_cost": position.average_cost or 0,
                            "realized_pnl": position.realized_pnl or 0,
                            "version": version,
                        }
                    ),
                }
            }
        )
    for asset in sorted(set(existing) - set(account.positions)):
        writes.append(
            {"Delete": {"TableName": table, "Key": {"PK": to_attr(pk), "SK": to_attr(position_sk(asset))}}}
        )
    if len(writes) > 100:
        raise CliError(f"account {account_id} has {len(writes)} positions: more than one transaction holds")
    if writes:
        await client.transact_write_items(TransactItems=writes)  # type: ignore[arg-type]


async def _positions(client: DynamoDBClient, table: str, pk: str) -> dict[str, dict[str, Any]]:
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
        "ExpressionAttributeValues": {":pk": to_attr(pk), ":prefix": to_attr(POSITION_PREFIX)},
        "ConsistentRead": True,
    }
    found: dict[str, dict[str, Any]] = {}
    while True:
        response = await client.query(**query)
        for raw in response.get("Items", []):
            item = from_item(raw)
            found[str(item["SK"]).removeprefix(POSITION_PREFIX)] = item
        if not response.get("LastEvaluatedKey"):
            return found
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
