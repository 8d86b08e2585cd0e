"""Quarantined accounts per consumer group (`QUARANTINE#<group>` / `ACCOUNT#<id>`).

Every change is one conditional write on the item, conditioned on the quarantine's token (and for a
release, its release id), so a consumer and the operator's CLI never act on a quarantine that has been
lifted or replaced meanwhile. See consumers/common/quarantine.py for the protocol.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any

from botocore.exceptions import ClientError

from consumers.common.quarantine import Quarantine, QuarantineHead
from infra.dynamo.client import DynamoDBClient, from_item, to_attr, to_item
from infra.dynamo.keys import quarantine_pk, quarantine_sk
from schemas.envelope import utc_now


def _from_item(item: dict[str, Any]) -> Quarantine:
    values = from_item(item)
    release_letters = values.get("release_letters")
    return Quarantine(
        account_id=str(values["account_id"]),
        token=str(values["token"]),
        head=str(values.get("head", "")),
        head_command_id=str(values.get("head_command_id", "")),
        letters=frozenset(str(p) for p in values.get("letters", ())),
        release_id=values.get("release_id"),
        release_letters=None if release_letters is None else int(release_letters),
        releasing=frozenset(str(t) for t in values.get("releasing", ())),
    )


async def _conditional(write: Awaitable[Any]) -> Any | None:
    """The write's answer, or None when its condition failed."""
    try:
        return await write
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return None
        raise


class DynamoQuarantineStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, group: str, account_id: str) -> dict[str, Any]:
        return {"PK": to_attr(quarantine_pk(group)), "SK": to_attr(quarantine_sk(account_id))}

    async def accounts(self, group: str) -> frozenset[str]:
        found: set[str] = set()
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": to_attr(quarantine_pk(group))},
            "ProjectionExpression": "account_id",
            "ConsistentRead": True,
        }
        while True:
            page = await self._client.query(**kwargs)
            found.update(str(from_item(item)["account_id"]) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return frozenset(found)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def get(self, group: str, account_id: str) -> Quarantine | None:
        answer = await self._client.get_item(
            TableName=self._table, Key=self._key(group, account_id), ConsistentRead=True
        )
        item = answer.get("Item")
        return _from_item(item) if item else None

    async def begin(self, group: str, head: QuarantineHead, *, replacing: str | None) -> Quarantine | None:
        token = uuid.uuid4().hex
        values = {
            "account_id": head.account_id,
            "group": group,
            "token": token,
            "head": head.position,
            "head_command_id": head.command_id,
            "error": head.error[:2000],
            "letters": {head.position},
            "quarantined_at": utc_now().isoformat(),
        }
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(PK)"}
            if replacing is None
            else {
                "ConditionExpression": "#token = :old",
                "ExpressionAttributeNames": {"#token": "token"},
                "ExpressionAttributeValues": {":old": to_attr(replacing)},
            }
        )
        written = await _conditional(
            self._client.put_item(
                TableName=self._table,
                Item={**self._key(group, head.account_id), **to_item(values)},
                **condition,
            )
        )
        if written is None:
            return None
        return Quarantine(head.account_id, token, head.position, head.command_id, frozenset({head.position}))

    async def add_letter(self, group: str, account_id: str, token: str, position: str) -> bool:
        written = await _conditional(
            self._client.update_item(
                TableName=self._table,
                Key=self._key(group, account_id),
                UpdateExpression="ADD letters :position",
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":position": {"SS": [position]}, ":token": to_attr(token)},
            )
        )
        return written is not None

    async def start_release(
        self, group: str, account_id: str, token: str, release_id: str, letters: int, topics: set[str]
    ) -> bool:
        """Records a release about to be sent (the CLI); False if the quarantine is gone or replaced."""
        written = await _conditional(
            self._client.update_item(
                TableName=self._table,
                Key=self._key(group, account_id),
                UpdateExpression="SET release_id = :release, release_letters = :letters, releasing = :topics",
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={
                    ":release": to_attr(release_id),
                    ":letters": to_attr(letters),
                    ":topics": {"SS": sorted(topics)},
                    ":token": to_attr(token),
                },
            )
        )
        return written is not None

    async def strike_topic(
        self, group: str, account_id: str, token: str, release_id: str, topic: str
    ) -> Quarantine | None:
        answer = await _conditional(
            self._client.update_item(
                TableName=self._table,
                Key=self._key(group, account_id),
                UpdateExpression="DELETE releasing :topic",
                ConditionExpression="#token = :token AND release_id = :release",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={
                    ":topic": {"SS": [topic]},
                    ":token": to_attr(token),
                    ":release": to_attr(release_id),
                },
                ReturnValues="ALL_NEW",
            )
        )
        return None if answer is None else _from_item(answer["Attributes"])

    async def lift(self, group: str, quarantine: Quarantine) -> bool:
        if quarantine.release_id is None or quarantine.release_letters is None:
            return False
        deleted = await _conditional(
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(group, quarantine.account_id),
                ConditionExpression=(
                    "#token = :token AND release_id = :release AND attribute_not_exists(releasing) "
                    "AND size(letters) = :letters"
                ),
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={
                    ":token": to_attr(quarantine.token),
                    ":release": to_attr(quarantine.release_id),
                    ":letters": to_attr(quarantine.release_letters),
                },
            )
        )
        return deleted is not None
