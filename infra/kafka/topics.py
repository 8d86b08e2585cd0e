"""Explicit topic creation: Tansu auto-creates with 4 partitions and cannot add partitions later."""

from __future__ import annotations

import contextlib

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from infra.settings import Settings
from schemas.topics import ALL_TOPICS, COMMAND_TOPICS, PRICES

log = structlog.get_logger(__name__)


def partitions_for(topic: str, settings: Settings) -> int:
    if topic in COMMAND_TOPICS:
        return settings.kafka_command_partitions
    if topic == PRICES:
        return 1
    return settings.kafka_event_partitions


async def ensure_topics(settings: Settings, topics: tuple[str, ...] = ALL_TOPICS) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id="ledgerflow-provision"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return
        new = [
            NewTopic(
                t,
                num_partitions=partitions_for(t, settings),
                replication_factor=settings.kafka_replication_factor,
            )
            for t in missing
        ]
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new)
        log.info("kafka.topics_created", topics=missing)
    finally:
        await admin.close()
