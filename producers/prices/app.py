"""The price producer as a FastStream app, so `make run` supervises it like the consumers.

`python -m producers.prices` runs the same app. `LEDGERFLOW_PRICE_FEED` picks the source: `random`
(a bounded random walk from the shipped starting prices), `replay` (a recorded CSV at
`LEDGERFLOW_PRICE_REPLAY_SPEED`), or `off` (publish nothing: tests publish their own ticks).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from faststream import FastStream

from consumers.common.runtime import make_broker, metrics_served
from consumers.registry import PRICE_FEED
from infra.data import load_assets, project_file
from infra.kafka.producer import KafkaPublisher, make_producer
from infra.logging import configure_logging
from infra.retry import retry_transient
from infra.settings import Settings, get_settings
from infra.tasks import cancel_and_wait
from producers.prices.feed import replay, run_random_walk
from producers.prices.walk import RandomWalk, read_recording

SERVICE = PRICE_FEED.name
settings = get_settings()
configure_logging(settings, SERVICE)
log = structlog.get_logger(__name__)


async def _feed(settings: Settings) -> None:
    if settings.price_feed == "off":
        return
    producer = make_producer(settings, f"ledgerflow-{SERVICE}")
    await retry_transient(producer.start, max_backoff_s=2)
    try:
        publisher = KafkaPublisher(producer)
        if settings.price_feed == "random":
            walk = RandomWalk(
                load_assets(), settings.price_max_step_bps, settings.price_band, settings.price_seed
            )
            await run_random_walk(publisher, walk, settings.price_tick_interval_s)
        else:
            await replay(
                publisher,
                read_recording(project_file(settings.price_replay_csv)),
                settings.price_replay_speed,
            )
    finally:
        await producer.stop()


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("prices.feed_failed", error=repr(task.exception()))


@asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    # Everything that talks to Kafka runs in the task, so a stop signal is obeyed even while it waits
    # for a broker that is not there yet.
    log.info("prices.feed_starting", feed=settings.price_feed)
    async with metrics_served(settings, PRICE_FEED):
        task = asyncio.create_task(_feed(settings))
        task.add_done_callback(_report_end)
        try:
            yield
        finally:
            await cancel_and_wait(task)


# FastStream runs no app without a broker; this one subscribes to nothing. Ticks go through our own
# producer adapter, the same one (keys, trace headers, acks) every other publisher uses.
app = FastStream(make_broker(settings, SERVICE), lifespan=lifespan)
