"""Create what the system needs before it starts: every Kafka topic, the DynamoDB table and the assets.

`python -m infra.provision` runs it against the configured servers (compose uses it as a one-shot job).
"""

from __future__ import annotations

import asyncio

import structlog

from infra.data import load_assets
from infra.dynamo.assets import DynamoAssets
from infra.dynamo.client import dynamodb_client
from infra.dynamo.table import ensure_table
from infra.kafka.topics import ensure_topics
from infra.logging import configure_logging
from infra.settings import Settings, get_settings

log = structlog.get_logger(__name__)


async def provision(settings: Settings) -> None:
    async def table() -> None:
        async with dynamodb_client(settings) as client:
            await ensure_table(client, settings.dynamodb_table)
            # Reference data, put again on every run (idempotent); prices come from ticks only.
            await DynamoAssets(client, settings.dynamodb_table).load_reference_data(load_assets())

    await asyncio.gather(ensure_topics(settings), table())
    log.info("provision.done", table=settings.dynamodb_table)


def main() -> None:
    settings = get_settings()
    configure_logging(settings, "provision")
    asyncio.run(provision(settings))


if __name__ == "__main__":
    main()
