"""Deposits and withdrawals: validated, published, answered 202."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CommandCaller, IdempotencyKey, ResourcesDep
from api.intake import submit
from api.problems import field_error
from schemas.commands import Deposit, Withdraw
from schemas.http import CashRequest, CommandReceipt
from schemas.money import to_cents

router = APIRouter(prefix="/v1", tags=["cash"])


def _check_limit(body: CashRequest, maximum: Any) -> None:
    if body.amount > maximum:
        raise field_error("amount", f"must be at most {maximum}")


@router.post("/deposits", status_code=202, response_model=CommandReceipt)
async def deposit(
    body: CashRequest, caller: CommandCaller, resources: ResourcesDep, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Deposit cash; the ledger settles it asynchronously."""
    _check_limit(body, resources.settings.max_cash_amount)
    return await submit(Deposit(amount=to_cents(body.amount)), caller, resources, idempotency_key)


@router.post("/withdrawals", status_code=202, response_model=CommandReceipt)
async def withdraw(
    body: CashRequest, caller: CommandCaller, resources: ResourcesDep, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Withdraw cash; rejected later as `insufficient_funds` if the balance does not cover it."""
    _check_limit(body, resources.settings.max_cash_amount)
    return await submit(Withdraw(amount=to_cents(body.amount)), caller, resources, idempotency_key)
