"""`ledgerflow dlq redrive --account`: release an account from its quarantine in a consumer group.

The letters of the quarantine (its head and every parked message: dead letters carrying its token) go
back to their original topics in their original order, each with `x-quarantine-pass: <token>`; the last
one sent to each topic also carries `x-quarantine-lift: <release id>`. Before sending, the release is
recorded on the quarantine item (its id, how many letters were found, the topics still to finish), so
that the consumers lift the quarantine only when every topic's last redriven message has been handled
and no message was parked beyond the ones sent: a command accepted meanwhile is parked behind the
redrive, never handled before it (see consumers/common/quarantine.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from consumers.common.quarantine import LIFT_HEADER, PASS_HEADER, QUARANTINE_HEADER, Quarantine
from infra.cli import broker
from infra.cli.dead_letters import DeadLetter, DeadLetterId, RedriveLog, dlq_topic_for, from_record
from infra.cli.errors import CliError
from infra.dynamo.client import dynamodb_client
from infra.dynamo.quarantine import DynamoQuarantineStore
from infra.settings import Settings

_POLL_S = 0.2


@dataclass(frozen=True)
class ReleasePlan:
    token: str
    release_id: str
    # One letter per original position not redriven yet, in original order (topic, partition, offset).
    letters: tuple[DeadLetter, ...]
    # Further letters of a position above (a message dead-lettered twice): recorded as redriven, not sent.
    duplicates: tuple[DeadLetter, ...]
    # Distinct positions under the token, sent now or by an earlier release: what the quarantine must hold.
    total: int

    @property
    def topics(self) -> set[str]:
        return {letter.original_topic for letter in self.letters}

    def messages(self) -> list[tuple[DeadLetter, list[tuple[str, bytes]]]]:
        last_per_topic = {letter.original_topic: letter for letter in self.letters}
        pass_header = (PASS_HEADER, self.token.encode())
        lift_header = (LIFT_HEADER, self.release_id.encode())
        return [
            (
                letter,
                letter.resend_headers(pass_header, lift_header)
                if last_per_topic[letter.original_topic] is letter
                else letter.resend_headers(pass_header),
            )
            for letter in self.letters
        ]


def plan_release(
    letters: Sequence[DeadLetter],
    *,
    group: str,
    account_id: str,
    token: str,
    redriven: Collection[DeadLetterId],
    release_id: str | None = None,
) -> ReleasePlan:
    """Which of the dead letters belong to the quarantine `token`, and in what order they go back."""
    mine = [
        letter
        for letter in letters
        if letter.key == account_id.encode()
        and letter.header("x-consumer-group") == group
        and letter.header(QUARANTINE_HEADER) == token
    ]
    sent_positions = {letter.position for letter in mine if letter.id in redriven}
    first: dict[tuple[str, int, int], DeadLetter] = {}
    duplicates: list[DeadLetter] = []
    for letter in sorted(mine, key=lambda letter: (letter.position, letter.id.partition, letter.id.offset)):
        if letter.id in redriven:
            continue
        if letter.position in first or letter.position in sent_positions:
            duplicates.append(letter)
        else:
            first[letter.position] = letter
    return ReleasePlan(
        token=token,
        release_id=release_id or uuid.uuid4().hex,
        letters=tuple(first.values()),
        duplicates=tuple(duplicates),
        total=len({letter.position for letter in mine}),
    )


Outcome = Literal["lifted", "failed_again", "parked_meanwhile", "pending"]


@dataclass(frozen=True)
class ReleaseResult:
    group: str
    sent: tuple[str, ...]
    outcome: Outcome
    detail: str


async def quarantined_groups(settings: Settings, account_id: str, groups: Sequence[str]) -> list[str]:
    async with dynamodb_client(settings) as client:
        store = DynamoQuarantineStore(client, settings.dynamodb_table)
        return [g for g in groups if await store.get(g, account_id) is not None]


async def release_account(
    settings: Settings, group: str, topics: Sequence[str], account_id: str, *, wait_s: float
) -> ReleaseResult:
    async with dynamodb_client(settings) as client:
        store = DynamoQuarantineStore(client, settings.dynamodb_table)
        log = RedriveLog(client, settings.dynamodb_table)
        quarantine = await store.get(group, account_id)
        if quarantine is None:
            raise CliError(f"account {account_id} is not quarantined in group {group}")
        dlq_topics = [dlq_topic_for(t) for t in topics]
        letters = await _read_letters(settings, dlq_topics)
        redriven: set[DeadLetterId] = set()
        for topic in dlq_topics:
            redriven.update(await log.redriven(topic))
        plan = plan_release(
            letters, group=group, account_id=account_id, token=quarantine.token, redriven=redriven
        )
        if not plan.letters:
            raise CliError(
                f"nothing to redrive for account {account_id} in group {group}: the quarantine holds "
                f"{len(quarantine.letters)} letter(s), {plan.total} found on {', '.join(dlq_topics)}, all "
                "redriven already (a letter may still be on its way: try again in a moment)"
            )
        if not await store.start_release(
            group, account_id, plan.token, plan.release_id, plan.total, plan.topics
        ):
            raise CliError(f"the quarantine of {account_id} in group {group} changed meanwhile; run it again")
        sent = await _send(settings, log, plan)
        outcome, detail = await _await_outcome(store, group, account_id, plan, wait_s)
        return ReleaseResult(group, tuple(sent), outcome, detail)


async def _read_letters(settings: Settings, topics: Sequence[str]) -> list[DeadLetter]:
    async with broker.admin_client(settings) as admin:
        existing = set(await broker.list_topics(admin))
    present = [t for t in topics if t in existing]
    async with broker.reader(settings) as consumer:
        ends = await broker.topic_ends(consumer, present, settings)
        return [from_record(r) async for r in broker.read_all(consumer, ends, settings)]


async def _send(settings: Settings, log: RedriveLog, plan: ReleasePlan) -> list[str]:
    sent: list[str] = []
    for duplicate in plan.duplicates:
        await log.claim(duplicate.id, duplicate.original_topic)
    async with broker.producer(settings) as producer:
        for letter, headers in plan.messages():
            if not await log.claim(letter.id, letter.original_topic):
                raise CliError(f"{letter.id} was redriven meanwhile by someone else; run it again")
            try:
                await producer.send_and_wait(
                    letter.original_topic, value=letter.value, key=letter.key, headers=headers
                )
            except BaseException:
                await log.release(letter.id)
                raise
            sent.append(f"{letter.id} -> {letter.original_topic}")
    return sent


async def _await_outcome(
    store: DynamoQuarantineStore, group: str, account_id: str, plan: ReleasePlan, wait_s: float
) -> tuple[Outcome, str]:
    deadline = time.monotonic() + wait_s
    current: Quarantine | None = None
    while True:
        current = await store.get(group, account_id)
        if current is None:
            return "lifted", "quarantine lifted"
        if current.token != plan.token:
            return "failed_again", (
                f"a redriven message failed again ({current.head_command_id}): the account is quarantined "
                "anew; see `ledgerflow dlq list`"
            )
        if (
            current.release_id == plan.release_id
            and not current.releasing
            and plan.total < len(current.letters)
        ):
            return "parked_meanwhile", (
                f"{len(current.letters) - plan.total} message(s) were parked while this ran: they wait "
                "behind the redrive; run the command again to release them"
            )
        if time.monotonic() >= deadline:
            return "pending", (
                f"not lifted within {wait_s:g} s: it lifts when the {group} consumers have handled the "
                "redriven messages (are they running?)"
            )
        await asyncio.sleep(_POLL_S)
