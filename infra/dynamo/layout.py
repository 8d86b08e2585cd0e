"""Until when a table may hold per-command dedupe records of the older layout.

A client command used to leave three items (a `COMMAND#<handler>#<id>` dedupe record, its event, for an
order an order-log copy); it now leaves one, its event item, which is also the dedupe record. A command
settled under the older layout must still count as settled if it is delivered again (a replay, a
redelivery across the upgrade), so the dedupe check also reads the older record, but only for commands
accepted before the table's cutover: provisioning stamps it once, in the past for a table it creates
(which holds no older records) and a day ahead for a table made by an older version (consumers of both
versions may overlap while an upgrade rolls out). Reading the older key for no command at all is what keeps
a fresh table's settlement at one read per batch.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Final

from botocore.exceptions import ClientError

from infra.dynamo.client import DynamoDBClient, to_attr
from infra.dynamo.keys import LAYOUT_SK, TABLE_META_PK
from schemas.envelope import utc_now

UPGRADE_OVERLAP: Final = timedelta(days=1)
_NO_OLDER_RECORDS: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Without a stamp (a table nobody provisioned with this version) every command may have an older record.
_UNKNOWN: Final = datetime.max.replace(tzinfo=UTC)
_RECHECK_UNKNOWN_S: Final = 60.0
_ATTRIBUTE: Final = "legacy_records_until"


def _key() -> dict[str, dict[str, str]]:
    return {"PK": to_attr(TABLE_META_PK), "SK": to_attr(LAYOUT_SK)}


async def stamp_layout(client: DynamoDBClient, table: str, *, created: bool) -> None:
    """Record the cutover once; later provisionings keep the first stamp."""
    until = _NO_OLDER_RECORDS if created else utc_now() + UPGRADE_OVERLAP
    try:
        await client.put_item(
            TableName=table,
            Item={**_key(), _ATTRIBUTE: to_attr(until.isoformat())},
            ConditionExpression="attribute_not_exists(PK)",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise


class LegacyRecords:
    """The table's cutover, read once (it never changes after provisioning stamps it)."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self._until: datetime | None = None
        self._unknown_since = 0.0

    async def until(self) -> datetime:
        """Commands accepted before this may have an older dedupe record."""
        if self._until is not None:
            return self._until
        if self._unknown_since and time.monotonic() - self._unknown_since < _RECHECK_UNKNOWN_S:
            return _UNKNOWN
        response = await self._client.get_item(TableName=self._table, Key=_key(), ConsistentRead=True)
        item = response.get("Item")
        if item is None:
            self._unknown_since = time.monotonic()
            return _UNKNOWN
        self._until = datetime.fromisoformat(str(item[_ATTRIBUTE]["S"]))
        return self._until
