"""Request and response bodies of the HTTP contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.money import CashAmount, DecimalString


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterRequest(Strict):
    username: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$", description="3-32 letters, digits, _ . -"
    )
    password: str = Field(min_length=10, max_length=128)


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class RegisteredUser(BaseModel):
    user_id: str
    username: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class Profile(BaseModel):
    user_id: str
    username: str
    role: Literal["customer", "admin"]
    created_at: datetime


class CashRequest(Strict):
    amount: CashAmount


class CommandReceipt(BaseModel):
    command_id: uuid.UUID
    kind: str
    status: Literal["accepted"] = "accepted"
    status_url: str


class CommandStatus(BaseModel):
    command_id: uuid.UUID
    kind: str
    status: Literal["accepted", "settled", "rejected"]
    reason: str | None = None
    result: dict[str, Any] | None = None
    accepted_at: datetime | None = None
    completed_at: datetime | None = None


class Balance(BaseModel):
    currency: Literal["USD"] = "USD"
    available: DecimalString


class Transaction(BaseModel):
    event_id: uuid.UUID
    type: str
    command_id: uuid.UUID | None
    status: Literal["settled", "rejected"]
    amount: DecimalString | None = None
    balance_after: DecimalString | None = None
    reason: str | None = None
    occurred_at: datetime


class TransactionPage(BaseModel):
    items: list[Transaction]
    next_cursor: str | None


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None
