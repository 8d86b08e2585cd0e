"""Admin-only reads: any account, any command. Nothing else is special about admins."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from fastapi import APIRouter

from api.command_status import find_command
from api.deps import CurrentAdmin, ResourcesDep
from api.problems import ProblemError
from infra.audit import audit
from schemas.money import decimal_to_str, to_cents

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_NOT_FOUND = ProblemError(404, "Not found", "no such resource")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _NOT_FOUND from None


@router.get("/accounts/{account_id}")
async def account(account_id: str, admin: CurrentAdmin, resources: ResourcesDep) -> dict[str, Any]:
    """An account's profile and cash balance."""
    parsed = str(_uuid(account_id))
    profile = await resources.accounts.profile(parsed)
    if profile is None:
        raise _NOT_FOUND
    available = await resources.accounts.available_cash(parsed)
    audit("admin.read_account", account_id=admin.user_id, subject=parsed, result="ok")
    return {
        "user_id": profile["user_id"],
        "username": profile["username"],
        "role": profile["role"],
        "created_at": profile["created_at"],
        "balance": {"currency": "USD", "available": decimal_to_str(to_cents(available or Decimal(0)))},
    }


@router.get("/commands/{command_id}")
async def command(command_id: str, admin: CurrentAdmin, resources: ResourcesDep) -> dict[str, Any]:
    """Any command's status, with the account it belongs to."""
    parsed = _uuid(command_id)
    found = await find_command(resources, parsed, None)
    if found is None:
        raise _NOT_FOUND
    owner, status = found
    audit("admin.read_command", account_id=admin.user_id, subject=str(parsed), result="ok")
    return {"account_id": owner, **status.model_dump(mode="json")}
