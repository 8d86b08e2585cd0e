"""Reading the outcome of a cancelled `TransactWriteItems`."""

from __future__ import annotations

from botocore.exceptions import ClientError


def cancellation_codes(exc: ClientError) -> list[str] | None:
    """Per-item cancellation codes (`ConditionalCheckFailed`, `None`, ...), or None if not a cancellation.

    A `TransactionConflict` (another transaction on the same item in flight) is reported as such; callers
    treat it like any other conflict and decide again.
    """
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons") or []
    return [str(r.get("Code") or "None") for r in reasons]
