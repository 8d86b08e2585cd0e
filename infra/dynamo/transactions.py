"""Reading the outcome of a cancelled `TransactWriteItems`."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from consumers.common.ports import CommitResult
from infra.dynamo.client import DynamoDBClient


def cancellation_codes(exc: ClientError) -> list[str] | None:
    """Per-item cancellation codes (`ConditionalCheckFailed`, `None`, ...), or None if not a cancellation.

    A `TransactionConflict` (another transaction on the same item in flight) is reported as such; callers
    treat it like any other conflict and decide again.
    """
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons") or []
    return [str(r.get("Code") or "None") for r in reasons]


async def commit_guarded(client: DynamoDBClient, items: list[dict[str, Any]]) -> CommitResult:
    """Writes a handler's transaction, whose first item is its dedupe record (`attribute_not_exists`).

    That item failing means the command or event was handled before: "duplicate". Any other cancelled
    condition means the state moved since it was read: "conflict". Other errors propagate.
    """
    try:
        await client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
    except ClientError as exc:
        codes = cancellation_codes(exc)
        if codes is None:
            raise
        return "duplicate" if codes[0] == "ConditionalCheckFailed" else "conflict"
    return "committed"
