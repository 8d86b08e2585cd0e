"""Users, accounts and the account's read paths (balance, transactions)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from infra.dynamo.client import DynamoDBClient, as_decimal, from_item, to_attr, to_item
from infra.dynamo.keys import EVENT_PREFIX, PROFILE_SK, account_pk, balance_sk, username_pk
from infra.dynamo.pagination import Page, newest_first
from infra.dynamo.transactions import cancellation_codes


class UsernameTaken(Exception):
    pass


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    password_hash: str
    role: str
    created_at: datetime


class DynamoAccounts:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    async def create_user(self, username: str, password_hash: str, role: str, now: datetime) -> User:
        """Username, profile and a zero balance in one transaction: an account never half exists."""
        user_id = str(uuid.uuid4())
        profile = {"user_id": user_id, "username": username, "role": role, "created_at": now.isoformat()}
        try:
            await self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(
                                {
                                    "PK": username_pk(username),
                                    "SK": PROFILE_SK,
                                    "password_hash": password_hash,
                                }
                                | profile
                            ),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item({"PK": account_pk(user_id), "SK": PROFILE_SK} | profile),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(
                                {
                                    "PK": account_pk(user_id),
                                    "SK": balance_sk(),
                                    "currency": "USD",
                                    "available": Decimal(0),
                                    "version": 0,
                                }
                            ),
                        }
                    },
                ]
            )
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise UsernameTaken(username) from exc
            raise
        return User(user_id, username, password_hash, role, now)

    async def set_role(self, username: str, role: str) -> User | None:
        """Operators grant or withdraw the admin role; it takes effect at the user's next login."""
        user = await self.find_by_username(username)
        if user is None:
            return None
        for pk in (username_pk(username), account_pk(user.user_id)):
            await self._client.update_item(
                TableName=self._table,
                Key={"PK": to_attr(pk), "SK": to_attr(PROFILE_SK)},
                UpdateExpression="SET #r = :role",
                ExpressionAttributeNames={"#r": "role"},
                ExpressionAttributeValues={":role": to_attr(role)},
            )
        return User(user.user_id, user.username, user.password_hash, role, user.created_at)

    async def find_by_username(self, username: str) -> User | None:
        response = await self._client.get_item(
            TableName=self._table,
            Key={"PK": to_attr(username_pk(username)), "SK": to_attr(PROFILE_SK)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _user(from_item(item)) if item else None

    async def profile(self, account_id: str) -> dict[str, Any] | None:
        response = await self._client.get_item(
            TableName=self._table, Key={"PK": to_attr(account_pk(account_id)), "SK": to_attr(PROFILE_SK)}
        )
        item = response.get("Item")
        return from_item(item) if item else None

    async def available_cash(self, account_id: str) -> Decimal | None:
        response = await self._client.get_item(
            TableName=self._table,
            Key={"PK": to_attr(account_pk(account_id)), "SK": to_attr(balance_sk())},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return as_decimal(from_item(item).get("available")) if item else None

    async def events(self, account_id: str, limit: int, cursor: str | None) -> Page:
        """The account's events, newest first; raises ValueError for a bad cursor."""
        return await newest_first(self._client, self._table, account_id, EVENT_PREFIX, limit, cursor)


def _user(item: dict[str, Any]) -> User:
    return User(
        user_id=str(item["user_id"]),
        username=str(item["username"]),
        password_hash=str(item["password_hash"]),
        role=str(item["role"]),
        created_at=datetime.fromisoformat(str(item["created_at"])),
    )
