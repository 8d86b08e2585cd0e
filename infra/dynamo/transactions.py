"""Settlement I/O shared by the stores: reading many items at once, and writing groups of items, each group
atomically, in as few `TransactWriteItems` as DynamoDB's limits allow, telling which groups were refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from botocore.exceptions import ClientError

from infra.dynamo.client import DynamoDBClient, from_item, to_attr

# DynamoDB's limits: items and bytes per transaction, keys per BatchGetItem.
MAX_TRANSACTION_ITEMS: Final = 100
MAX_TRANSACTION_BYTES: Final = 4 * 1024 * 1024
MAX_BATCH_GET_KEYS: Final = 100
# What an item weighs beyond its JSON text (attribute names, request framing): a generous allowance.
_ITEM_OVERHEAD_BYTES: Final = 512
_UNPROCESSED_PAUSE_S: Final = 0.05

GroupKey = TypeVar("GroupKey", bound=Hashable)
ItemKey = tuple[str, str]


def cancellation_codes(exc: ClientError) -> list[str] | None:
    """Per-item cancellation codes (`ConditionalCheckFailed`, `None`, ...), or None if not a cancellation.

    A `TransactionConflict` (another transaction on the same item in flight) is reported as such; callers
    treat it like any other conflict and decide again.
    """
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons") or []
    return [str(r.get("Code") or "None") for r in reasons]


class UnattributedCancellation(Exception):
    """A transaction was cancelled without any item naming why: not a condition, so not to be retried."""


class GroupTooLarge(ValueError):
    """One group exceeds what a single transaction may hold (a caller's bug: groups are never split)."""


@dataclass(frozen=True)
class ItemGroup(Generic[GroupKey]):
    """Items that commit together or not at all (one account's coalesced state and its commands' items)."""

    key: GroupKey
    items: Sequence[dict[str, Any]]

    @property
    def size(self) -> int:
        return sum(len(json.dumps(item)) + _ITEM_OVERHEAD_BYTES for item in self.items)


def pack(groups: Sequence[ItemGroup[GroupKey]]) -> list[list[ItemGroup[GroupKey]]]:
    """Groups into transactions, in order, each within the item and byte limits; a group is never split."""
    transactions: list[list[ItemGroup[GroupKey]]] = []
    current: list[ItemGroup[GroupKey]] = []
    items = size = 0
    for group in groups:
        group_size = group.size
        if len(group.items) > MAX_TRANSACTION_ITEMS or group_size > MAX_TRANSACTION_BYTES:
            raise GroupTooLarge(f"{len(group.items)} items, ~{group_size} bytes in one group")
        if current and (
            items + len(group.items) > MAX_TRANSACTION_ITEMS or size + group_size > MAX_TRANSACTION_BYTES
        ):
            transactions.append(current)
            current, items, size = [], 0, 0
        current.append(group)
        items += len(group.items)
        size += group_size
    if current:
        transactions.append(current)
    return transactions


async def write_groups(client: DynamoDBClient, groups: Sequence[ItemGroup[GroupKey]]) -> frozenset[GroupKey]:
    """Writes every group atomically; returns the keys of the groups refused, of which nothing was written.

    A cancelled transaction's `CancellationReasons` (one code per item, in order) name the items whose
    condition failed; their groups are refused, and the other groups of that transaction, of which nothing
    was written either, are written again without them. A cancellation naming no item is raised.
    """
    refused: set[GroupKey] = set()

    async def commit(transaction: list[ItemGroup[GroupKey]]) -> None:
        while transaction:
            items = [item for group in transaction for item in group.items]
            try:
                await client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
                return
            except ClientError as exc:
                codes = cancellation_codes(exc)
                if codes is None:
                    raise
                failed = _failed_groups(transaction, codes)
                if not failed:
                    raise UnattributedCancellation(f"transaction cancelled with codes {codes}") from exc
            refused.update(failed)
            transaction = [group for group in transaction if group.key not in failed]

    await asyncio.gather(*(commit(t) for t in pack(groups)))
    return frozenset(refused)


def _failed_groups(transaction: Sequence[ItemGroup[GroupKey]], codes: Sequence[str]) -> set[GroupKey]:
    failed: set[GroupKey] = set()
    position = 0
    for group in transaction:
        span = codes[position : position + len(group.items)]
        if any(code not in ("None", "") for code in span):
            failed.add(group.key)
        position += len(group.items)
    return failed


async def get_items(
    client: DynamoDBClient, table: str, keys: Sequence[ItemKey]
) -> dict[ItemKey, dict[str, Any]]:
    """The items that exist among `keys` (strongly consistent reads), by (PK, SK), in as few
    `BatchGetItem` requests as its 100-key limit allows, sent concurrently."""
    unique = list(dict.fromkeys(keys))
    found: dict[ItemKey, dict[str, Any]] = {}

    async def read(chunk: Sequence[ItemKey]) -> None:
        pending: Mapping[str, Any] = {
            table: {
                "Keys": [{"PK": to_attr(pk), "SK": to_attr(sk)} for pk, sk in chunk],
                "ConsistentRead": True,
            }
        }
        while pending:
            response = await client.batch_get_item(RequestItems=pending)
            for raw in response.get("Responses", {}).get(table, []):
                item = from_item(raw)
                found[(str(item["PK"]), str(item["SK"]))] = item
            # Throttled keys come back unprocessed: asked again after a pause, they are not lost.
            pending = dict(response.get("UnprocessedKeys") or {})
            if pending:
                await asyncio.sleep(_UNPROCESSED_PAUSE_S)

    await asyncio.gather(
        *(read(unique[s : s + MAX_BATCH_GET_KEYS]) for s in range(0, len(unique), MAX_BATCH_GET_KEYS))
    )
    return found
