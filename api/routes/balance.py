"""The caller's cash balance and its history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CurrentUser, ResourcesDep
from api.problems import ProblemError, field_error
from schemas.http import Balance, Transaction, TransactionPage
from schemas.money import to_cents

router = APIRouter(prefix="/v1/balance", tags=["balance"])


@router.get("", response_model=Balance)
async def balance(user: CurrentUser, resources: ResourcesDep) -> Balance:
    """Available cash in USD."""
    available = await resources.accounts.available_cash(user.user_id)
    if available is None:
        raise ProblemError(404, "Not found", "no such account")
    return Balance(available=to_cents(available))


def _transaction(item: dict[str, Any]) -> Transaction:
    payload = item.get("payload") or {}
    return Transaction(
        event_id=item["event_id"],
        type=item["type"],
        command_id=payload.get("command_id") or item.get("causation_id"),
        status="rejected" if "reason" in payload else "settled",
        amount=payload.get("amount") or payload.get("cash_amount"),
        balance_after=payload.get("balance_after"),
        reason=payload.get("reason"),
        occurred_at=item["occurred_at"],
    )


@router.get("/transactions", response_model=TransactionPage)
async def transactions(
    user: CurrentUser,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> TransactionPage:
    """The account's ledger events, newest first, paginated by an opaque cursor."""
    try:
        page = await resources.accounts.events(user.user_id, limit, cursor)
    except ValueError:
        raise field_error("cursor", "not a cursor this endpoint issued") from None
    return TransactionPage(items=[_transaction(i) for i in page.items], next_cursor=page.next_cursor)
