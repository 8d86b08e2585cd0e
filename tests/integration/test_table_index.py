"""Provisioning gives a table made before the command index existed that index, without losing items."""

from __future__ import annotations

from infra.dynamo.client import dynamodb_client, to_attr
from infra.dynamo.keys import COMMAND_INDEX
from infra.dynamo.table import ensure_table
from infra.settings import Settings
from tests.support.tables import older_table


async def test_an_older_table_gains_the_command_index(settings: Settings) -> None:
    async with dynamodb_client(settings) as client, older_table(client) as table:
        kept = {"PK": to_attr("ACCOUNT#a"), "SK": to_attr("BALANCE#USD")}
        await client.put_item(TableName=table, Item=kept)
        await ensure_table(client, table)
        await ensure_table(client, table)  # a second provisioning changes nothing
        described = (await client.describe_table(TableName=table))["Table"]
        indexes = {i["IndexName"]: i["IndexStatus"] for i in described.get("GlobalSecondaryIndexes", [])}
        assert indexes == {COMMAND_INDEX: "ACTIVE"}
        assert (await client.get_item(TableName=table, Key=kept)).get("Item") == kept
