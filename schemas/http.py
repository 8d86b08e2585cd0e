"""Request and response bodies of the HTTP contract."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.money import CashAmount, DecimalString


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$"
_COMMON_PASSWORDS = frozenset(
    {"password123", "1234567890", "qwertyuiop", "password1!", "letmein123", "iloveyou12", "welcome123"}
)


class RegisterRequest(Strict):
    username: str = Field(pattern=USERNAME_PATTERN, description="3-32 ASCII letters, digits, _ . -")
    password: str = Field(
        min_length=10,
        max_length=72,
        description="10-72 characters (at most 72 bytes), with a letter and a digit or symbol",
    )

    @field_validator("password")
    @classmethod
    def _policy(cls, password: str) -> str:
        if len(password.encode()) > 72:
            raise ValueError("must be at most 72 bytes in UTF-8")  # bcrypt reads no further
        if any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn"} for c in password):
            raise ValueError("must not contain control or invisible characters")
        if not any(c.isalpha() for c in password) or all(c.isalpha() for c in password):
            raise ValueError("must contain a letter and a digit or symbol")
        if password.lower() in _COMMON_PASSWORDS or len(set(password)) < 4:
            raise ValueError("is too easy to guess")
        return password

    @model_validator(mode="after")
    def _not_the_username(self) -> RegisterRequest:
        if self.username.lower() in self.password.lower():
            raise ValueError("password must not contain the username")
        return self


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


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
