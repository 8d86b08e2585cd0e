"""Replaying a consumer group: where each partition goes, and how much will be handled again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.cli import broker
from infra.cli.errors import CliError
from infra.settings import Settings


@dataclass(frozen=True)
class Target:
    """Exactly one of the three: a time, an offset, or the earliest offset."""

    to_datetime: datetime | None = None
    to_offset: int | None = None
    to_earliest: bool = False

    def describe(self) -> str:
        if self.to_datetime is not None:
            return f"the first message at or after {self.to_datetime.isoformat()}"
        if self.to_offset is not None:
            return f"offset {self.to_offset}"
        return "the earliest offset"


@dataclass(frozen=True)
class PartitionPlan:
    tp: TopicPartition
    committed: int | None
    target: int
    end: int

    @property
    def reprocessed(self) -> int:
        """Messages handled again (negative: skipped) once the group restarts from the target."""
        # With nothing committed, the consumers start from the earliest offset (auto_offset_reset).
        current = self.committed if self.committed is not None else 0
        return current - self.target


def choose_target(target: Target, begin: int, end: int, found_for_time: int | None) -> int:
    if target.to_earliest:
        return begin
    if target.to_offset is not None:
        # Clamped like kafka-consumer-groups does: outside the log, the nearest end of it.
        return min(max(target.to_offset, begin), end)
    assert found_for_time is not None
    return found_for_time


async def plan(settings: Settings, group: str, topics: list[str], target: Target) -> list[PartitionPlan]:
    async with broker.admin_client(settings) as admin, broker.reader(settings) as consumer:
        existing = set(await broker.list_topics(admin))
        unknown = [t for t in topics if t not in existing]
        if unknown:
            raise CliError(f"no such topic: {', '.join(unknown)}")
        ends = await broker.topic_ends(consumer, topics, settings)
        tps = sorted(ends, key=lambda tp: (tp.topic, tp.partition))
        begins = await broker.beginnings(consumer, tps, settings)
        committed = await broker.committed_offsets(admin, group, tps)
        plans = []
        for tp in tps:
            found = None
            if target.to_datetime is not None:
                found = await _offset_for_time(consumer, tp, target.to_datetime, begins[tp], ends[tp])
            plans.append(
                PartitionPlan(tp, committed[tp], choose_target(target, begins[tp], ends[tp], found), ends[tp])
            )
        return plans


async def _offset_for_time(
    consumer: AIOKafkaConsumer, tp: TopicPartition, at: datetime, begin: int, end: int
) -> int:
    return await broker.offset_for_time(consumer, tp, int(at.timestamp() * 1000), begin, end)


def _refusal(group: str, members: int, state: str) -> CliError:
    return CliError(
        f"group {group!r} has {members} active member(s) (state {state}): stop its consumers first "
        "(stop the consumer processes; after a kill, wait one session timeout), then run this again"
    )


async def refuse_if_active(settings: Settings, group: str) -> None:
    """For operations that must not join the group: refuse while the broker lists any member."""
    async with broker.admin_client(settings) as admin:
        state = await broker.group_state(admin, group)
    if state.active:
        raise _refusal(group, len(state.members), state.state)


async def execute(settings: Settings, group: str, plans: list[PartitionPlan]) -> None:
    """Join the group, and commit the targets only if this member alone got every partition.

    The broker's member list is not enough on its own: Tansu keeps listing a member that died (or
    even one that left) until somebody else joins the group, so a listed member may be stale. A join
    settles it: stale members are expired by the join, while a live member keeps a share of the
    partitions, and then nothing is committed.
    """
    async with broker.admin_client(settings) as admin:
        state = await broker.group_state(admin, group)
    # A new member waits about half a session timeout for its partitions; a stale member is dropped
    # after a session timeout; leave room for both and a rebalance.
    join_timeout_s = max(30.0, 4 * settings.kafka_session_timeout_ms / 1000)
    try:
        await broker.commit_as_group(settings, group, {p.tp: p.target for p in plans}, join_timeout_s)
    except broker.NotAssigned as exc:
        raise _refusal(group, max(1, len(state.members)), state.state) from exc
