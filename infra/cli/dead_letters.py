"""Dead letters as operators see them, and what a redrive sends back.

A dead letter's id is `<dlq topic>:<partition>:<offset>`: stable for as long as the topic is kept.
Redrives are recorded as one DynamoDB item each (`DLQ#<dlq topic>` / `REDRIVE#<partition>#<offset>`),
claimed with `attribute_not_exists` before the send, so two operators running `redrive --all` at once
cannot both send the same letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from consumers.common.quarantine import QUARANTINE_HEADER
from infra.cli.errors import CliError
from infra.dynamo.client import DynamoDBClient, from_item, to_attr, to_item
from infra.dynamo.keys import dead_letter_pk, redrive_sk
from schemas.envelope import utc_now

DLQ_SUFFIX = ".dlq"
# Sent with every redrive, one more each time, so that a message going round in circles shows.
REDRIVE_COUNT_HEADER = "x-redrive-count"
# Headers that dead-lettering or a redrive added; everything else is the original message's and travels back.
_ADDED_PREFIXES = (
    "x-error",
    "x-original-",
    "x-dead-lettered-at",
    "x-consumer-group",
    "x-truncated",
    "x-quarantine-",
    REDRIVE_COUNT_HEADER,
)


@dataclass(frozen=True)
class DeadLetterId:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> DeadLetterId:
        topic, _, rest = text.rpartition(":")
        topic, _, partition = topic.rpartition(":")
        if not topic.endswith(DLQ_SUFFIX) or not partition.isdigit() or not rest.isdigit():
            raise CliError(f"not a dead-letter id: {text!r} (expected <topic>.dlq:<partition>:<offset>)", 2)
        return cls(topic, int(partition), int(rest))


@dataclass(frozen=True)
class DeadLetter:
    id: DeadLetterId
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def error(self) -> str:
        return self.header("x-error") or "?"

    @property
    def reason(self) -> str:
        return self.header("x-error-reason") or ""

    @property
    def original_topic(self) -> str:
        return self.header("x-original-topic") or self.id.topic.removesuffix(DLQ_SUFFIX)

    @property
    def original_partition(self) -> str:
        return self.header("x-original-partition") or "?"

    @property
    def original_offset(self) -> str:
        return self.header("x-original-offset") or "?"

    @property
    def dead_lettered_at(self) -> str:
        at = self.header("x-dead-lettered-at")
        if at:
            return at
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).isoformat()

    @property
    def truncated(self) -> bool:
        return self.header("x-truncated") == "true"

    @property
    def quarantine(self) -> str | None:
        """The token of the quarantine this letter belongs to (its head, or a message parked behind it)."""
        return self.header(QUARANTINE_HEADER)

    @property
    def redrive_count(self) -> int:
        """How many times the message had been redriven before it landed here."""
        count = self.header(REDRIVE_COUNT_HEADER) or "0"
        return int(count) if count.isdigit() else 0

    @property
    def position(self) -> tuple[str, int, int]:
        """Where the original message was read (a message dead-lettered twice has one position)."""
        partition, offset = self.original_partition, self.original_offset
        return (
            self.original_topic,
            int(partition) if partition.isdigit() else -1,
            int(offset) if offset.isdigit() else -1,
        )

    def redrive_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith(_ADDED_PREFIXES)]

    def resend_headers(self, *extra: tuple[str, bytes]) -> list[tuple[str, bytes]]:
        """What a redrive sends: the original headers, the redrive count one up, and `extra`."""
        return [
            *self.redrive_headers(),
            (REDRIVE_COUNT_HEADER, str(self.redrive_count + 1).encode()),
            *extra,
        ]


def from_record(record: Any) -> DeadLetter:
    return DeadLetter(
        id=DeadLetterId(record.topic, record.partition, record.offset),
        key=record.key,
        value=record.value,
        headers=tuple((k, bytes(v)) for k, v in (record.headers or ())),
        timestamp_ms=int(record.timestamp),
    )


def dlq_topic_for(topic: str) -> str:
    """Accepts either the original topic or its dead-letter topic."""
    return topic if topic.endswith(DLQ_SUFFIX) else f"{topic}{DLQ_SUFFIX}"


class RedriveLog:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, letter: DeadLetterId) -> dict[str, Any]:
        return {
            "PK": to_attr(dead_letter_pk(letter.topic)),
            "SK": to_attr(redrive_sk(letter.partition, letter.offset)),
        }

    async def redriven(self, topic: str) -> dict[DeadLetterId, str]:
        """When each letter of the dead-letter topic was redriven."""
        found: dict[DeadLetterId, str] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": to_attr(dead_letter_pk(topic))},
            "ConsistentRead": True,
        }
        while True:
            page = await self._client.query(**kwargs)
            for raw in page.get("Items", []):
                item = from_item(raw)
                letter = DeadLetterId(topic, int(item["partition"]), int(item["offset"]))
                found[letter] = str(item["redriven_at"])
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def claim(self, letter: DeadLetterId, target_topic: str, *, force: bool = False) -> bool:
        """Record the redrive before sending; False when someone already redrove this letter."""
        condition = {} if force else {"ConditionExpression": "attribute_not_exists(PK)"}
        try:
            await self._client.put_item(
                TableName=self._table,
                Item={
                    **self._key(letter),
                    **to_item(
                        {
                            "partition": letter.partition,
                            "offset": letter.offset,
                            "target_topic": target_topic,
                            "redriven_at": utc_now().isoformat(),
                        }
                    ),
                },
                **condition,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def release(self, letter: DeadLetterId) -> None:
        """Undo a claim whose send failed, so that the letter can be redriven again."""
        await self._client.delete_item(TableName=self._table, Key=self._key(letter))
