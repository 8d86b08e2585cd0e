"""The exactly-once settlement loop, written once: the ledger, trading and portfolio consumers each supply
only their pure rules (`Rules`) and their store adapter (`SettlementStore`).

One round over the messages still to settle:
1. load, at once, the state of every account they touch and the dedupe records of their ids;
2. a message whose dedupe record exists was handled before: its stored events are republished as they are;
3. every other message is decided in order, with the pure rules, against its account's state in memory,
   each decision applied to that state before the next one is decided;
4. the store writes each account's decisions atomically: the coalesced state, conditioned on the versions
   read, with the dedupe record (`attribute_not_exists`) and the event items of every decision.

The store answers which accounts it could not write (a condition failed: the state moved since it was
read, or a dedupe record appeared meanwhile): nothing of theirs was written, so their messages go round
again, decided afresh against fresh state; every other account's writes stand. After the last round the
events of all messages are published in one go, in message order, and only then does the caller return
(and FastStream commit the offsets). A crash anywhere before that commit redelivers the messages, whose
dedupe records then turn them into republications of the same events.

One message per call (`LEDGERFLOW_SETTLE_MODE=one`) is the same loop with a batch of one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import structlog

from consumers.common import metrics
from consumers.common.ports import EventPublisher, StoredOutcome
from infra.audit import audit
from schemas.envelope import Envelope, utc_now
from schemas.events import Event

log = structlog.get_logger(__name__)
# Refusals come from concurrent writers, and each round re-reads what they wrote. Refused this many rounds,
# a batch points at a store whose conditions disagree with its rules (a bug): better a failure the runtime
# can dead-letter than a partition spinning forever.
MAX_REFUSED_ROUNDS = 100


class SettlementStalled(Exception):
    """The store kept refusing an account's writes though each round decided on fresh state."""


class Decision(Protocol):
    @property
    def events(self) -> tuple[Envelope[Event], ...]: ...


StateT = TypeVar("StateT")
DecisionT = TypeVar("DecisionT", bound=Decision)


@dataclass(frozen=True)
class Snapshot(Generic[StateT]):
    """What a store loaded for a batch: every account's state, and the dedupe records that exist."""

    states: Mapping[str, StateT]
    outcomes: Mapping[uuid.UUID, StoredOutcome]


@dataclass(frozen=True)
class AccountPlan(Generic[StateT, DecisionT]):
    """One account's share of a round: the state read, the state after its decisions, the decisions."""

    account_id: str
    before: StateT
    after: StateT
    decisions: tuple[DecisionT, ...]


class SettlementStore(Protocol[StateT, DecisionT]):
    @property
    def max_commands_per_account(self) -> int:
        """The most decisions of one account that one transaction holds with the account's state items."""
        ...

    async def load(self, messages: Sequence[Envelope[Any]]) -> Snapshot[StateT]:
        """The state of every account of `messages` and the dedupe records of their ids, at once."""
        ...

    async def commit(self, plans: Sequence[AccountPlan[StateT, DecisionT]], topic: str) -> frozenset[str]:
        """Writes each plan atomically (never split); returns the accounts whose write was refused."""
        ...


@dataclass(frozen=True)
class Outcome:
    """How an outcome is audited: the action, its result, and the facts worth a line."""

    action: str
    result: str
    facts: Mapping[str, object] = field(default_factory=dict)


class Rules(Protocol[StateT, DecisionT]):
    @property
    def topic(self) -> str:
        """Where the decisions' events are published."""
        ...

    def dedupe_id(self, message: Envelope[Any]) -> uuid.UUID | None:
        """The id the dedupe record is keyed by; None when the message asks for nothing to be settled."""
        ...

    def decide(self, message: Envelope[Any], state: StateT, now: datetime) -> tuple[DecisionT, StateT]:
        """Pure: the decision, and the account's state once it has taken effect."""
        ...

    def outcome(self, decision: DecisionT) -> Outcome: ...


@dataclass(frozen=True)
class Inbound:
    envelope: Envelope[Any]
    # Log bindings of this message's own (its trace id, its place in the topic) for the lines about it.
    log_context: Mapping[str, object] = field(default_factory=dict)


class Settler(Generic[StateT, DecisionT]):
    """The loop above, over one consumer's rules and store."""

    def __init__(
        self,
        rules: Rules[StateT, DecisionT],
        store: SettlementStore[StateT, DecisionT],
        publisher: EventPublisher,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.rules = rules
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self._last_decided_at: datetime | None = None

    async def settle_one(self, message: Envelope[Any]) -> DecisionT | None:
        """The decision committed for `message`, or None if it had been handled before (or needs nothing)."""
        (decision,) = await self.settle([Inbound(message)])
        return decision

    async def settle(self, inbound: Sequence[Inbound]) -> list[DecisionT | None]:
        """Settles the messages (one partition's, in order); for each, the decision committed for it, or
        None if it had been handled before. Returns once every event is published."""
        results: list[DecisionT | None] = [None] * len(inbound)
        tally: Tally[tuple[str, str, str]] = Tally()
        published: dict[int, tuple[str, tuple[bytes, ...]]] = {}
        pending = [i for i, m in enumerate(inbound) if self.rules.dedupe_id(m.envelope) is not None]
        rounds = refused_rounds = 0
        while pending:
            rounds += 1
            snapshot = await self.store.load([inbound[i].envelope for i in pending])
            planned, duplicates, plans = self._plan(inbound, pending, snapshot)
            for i, stored in duplicates.items():
                published[i] = (stored.topic, stored.events)
                tally[(inbound[i].envelope.type, "duplicate", "")] += 1
                with _bound(inbound[i]):
                    log.info("settle.duplicate", republished=len(stored.events))
            refused = await self.store.commit(plans, self.rules.topic) if plans else frozenset()
            still: list[int] = []
            for i in pending:
                if i in duplicates:
                    continue
                decision = planned.get(i)
                if decision is None or inbound[i].envelope.account_id in refused:
                    still.append(i)
                    continue
                results[i] = decision
                published[i] = (self.rules.topic, tuple(e.to_bytes() for e in decision.events))
                outcome = self._audit(inbound[i], decision, rounds)
                tally[(inbound[i].envelope.type, outcome.result, str(outcome.facts.get("reason") or ""))] += 1
            if refused:
                log.info("settle.retry", refused=len(refused), round=rounds)
                metrics.count_retry("conflict")
                refused_rounds += 1
                if refused_rounds == MAX_REFUSED_ROUNDS:
                    raise SettlementStalled(f"accounts {sorted(refused)[:5]} refused {refused_rounds} times")
            pending = still
        await self._publish(inbound, published)
        metrics.observe_settlement(len(inbound))
        metrics.count_outcomes(tally)
        return results

    def _plan(
        self, inbound: Sequence[Inbound], pending: Sequence[int], snapshot: Snapshot[StateT]
    ) -> tuple[dict[int, DecisionT], dict[int, StoredOutcome], list[AccountPlan[StateT, DecisionT]]]:
        """Decides each account's messages in order against its state, up to the store's per-account
        limit (the rest wait for the next round); duplicates are set apart, never decided."""
        planned: dict[int, DecisionT] = {}
        duplicates: dict[int, StoredOutcome] = {}
        plans: list[AccountPlan[StateT, DecisionT]] = []
        # A message delivered twice within the batch waits for the next round, which finds it recorded.
        seen: set[uuid.UUID | None] = set()
        for account_id, indexes in _by_account(inbound, pending).items():
            before = state = snapshot.states[account_id]
            decisions: list[DecisionT] = []
            for i in indexes:
                message = inbound[i].envelope
                dedupe_id = self.rules.dedupe_id(message)
                stored = snapshot.outcomes.get(dedupe_id) if dedupe_id is not None else None
                if stored is not None:
                    duplicates[i] = stored
                    continue
                if len(decisions) == self.store.max_commands_per_account:
                    break
                if dedupe_id in seen:
                    continue
                seen.add(dedupe_id)
                decision, state = self.rules.decide(message, state, self._decision_time())
                planned[i] = decision
                decisions.append(decision)
            if decisions:
                plans.append(AccountPlan(account_id, before, state, tuple(decisions)))
        return planned, duplicates, plans

    def _decision_time(self) -> datetime:
        """Now, strictly after the previous decision: an account's history lists its events by time, and
        a batch's decisions follow each other within the same clock tick."""
        now = self.clock()
        if self._last_decided_at is not None and now <= self._last_decided_at:
            now = self._last_decided_at + timedelta(microseconds=1)
        self._last_decided_at = now
        return now

    def _audit(self, message: Inbound, decision: DecisionT, rounds: int) -> Outcome:
        outcome = self.rules.outcome(decision)
        with _bound(message):
            audit(outcome.action, result=outcome.result, attempts=rounds, **outcome.facts)
        return outcome

    async def _publish(
        self, inbound: Sequence[Inbound], published: Mapping[int, tuple[str, tuple[bytes, ...]]]
    ) -> None:
        """Every event of the batch at once: per (topic, key) in message order, all sends in flight
        together, acknowledged before returning."""
        streams: dict[tuple[str, str], list[bytes]] = {}
        for i in sorted(published):
            topic, events = published[i]
            streams.setdefault((topic, inbound[i].envelope.account_id), []).extend(events)
        await asyncio.gather(
            *(self.publisher.publish_raw(topic, key, values) for (topic, key), values in streams.items())
        )


def _by_account(inbound: Sequence[Inbound], indexes: Sequence[int]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for i in indexes:
        grouped.setdefault(inbound[i].envelope.account_id, []).append(i)
    return grouped


def _bound(message: Inbound) -> Any:
    envelope = message.envelope
    return structlog.contextvars.bound_contextvars(
        **{
            "command_id": str(envelope.causation_id or envelope.id),
            "account_id": envelope.account_id,
            **message.log_context,
        }
    )
