"""Drives one running system the way clients do and records what happened.

Commands go over HTTP (bench.http); their outcomes are read from `events.balance` and `events.order`
by a plain Kafka consumer on the benchmark's side: cheaper than polling each command, and exact (an
outcome event's Kafka timestamp is when it was published, i.e. settled). POST-to-settled latency is that
timestamp minus the moment the POST was sent (in open loop: the moment it was due, so a slow server
cannot hide its queueing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.http import HttpClient, HttpError
from bench.metrics import Outcome, Post, Recorded, Window, counter_delta, per_command, per_second, summarize
from bench.procstat import cpu_by_name
from bench.system import SETTLING_APPS, System
from bench.workload import ASSETS, PRICE, Planned, Workload
from infra.tasks import cancel_and_wait
from producers.commands import TOPIC_BY_COMMAND, envelope_for
from producers.prices.feed import tick_envelope
from schemas.commands import Command, Deposit, PlaceOrder, Withdraw
from schemas.topics import BALANCE_EVENTS, ORDER_EVENTS, PRICES

Mode = Literal["end-to-end", "intake-only", "settle-only"]
SETTLED_TYPES: Final = frozenset({"DepositSettled", "WithdrawalSettled", "OrderFilled"})
PASSWORD: Final = "correct-horse-battery-9"
_COMMANDS: Final[Mapping[str, type[Command]]] = {
    "deposit": Deposit,
    "withdrawal": Withdraw,
    "buy": PlaceOrder,
    "sell": PlaceOrder,
}


@dataclass(frozen=True)
class LoadConfig:
    mode: Mode = "end-to-end"
    accounts: int = 20
    duration_s: float = 60.0
    warmup_s: float = 10.0
    # Open loop at this many POSTs per second; None: closed loop with `concurrency` commands in flight.
    rate: float | None = None
    concurrency: int = 100
    connections: int = 32
    # Settle-only: commands loaded onto the command topics before the consumers start.
    commands: int = 20_000
    drain_timeout_s: float = 30.0
    mix: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    idempotency_keys: bool = False


@dataclass
class Account:
    account_id: str
    token: str
    heads: dict[tuple[str, int], bytes] = field(default_factory=dict)


class Tracker:
    """Commands accepted and not yet decided, matched with their outcome events as these arrive."""

    def __init__(self, workload: Workload, recorded: Recorded) -> None:
        self._workload = workload
        self._recorded = recorded
        self._pending: dict[str, tuple[Planned, float, asyncio.Future[bool]]] = {}
        # Outcomes read before their POST's answer was (the consumer can be that quick).
        self._early: dict[str, tuple[float, bool]] = {}
        self._done: set[str] = set()
        self.last_outcome_at = 0.0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def accepted(self, command_id: str, planned: Planned, sent_at: float) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = (planned, sent_at, future)
        early = self._early.pop(command_id, None)
        if early is not None:
            self.outcome(command_id, *early)
        return future

    def outcome(self, command_id: str, at: float, settled: bool) -> None:
        entry = self._pending.pop(command_id, None)
        if entry is None:
            if command_id not in self._done:  # a redelivered outcome is not a second one
                self._early[command_id] = (at, settled)
            return
        planned, sent_at, future = entry
        self._done.add(command_id)
        self.last_outcome_at = max(self.last_outcome_at, at)
        if planned.kind == "funding":
            future.set_result(settled)
            return
        self._recorded.outcomes.append(Outcome(sent_at, at, settled, planned.kind))
        self._workload.settle(planned, settled)
        if not future.done():
            future.set_result(settled)

    def give_up(self) -> None:
        """The commands still pending will not be waited for any more: count them as unsettled."""
        for command_id, (planned, sent_at, future) in self._pending.items():
            self._recorded.unsettled.append(sent_at)
            self._recorded.unsettled_ids.append(command_id)
            self._workload.settle(planned, False)
            if not future.done():
                future.cancel()
        self._pending.clear()


async def listen_outcomes(bootstrap: str, tracker: Tracker, ready: asyncio.Event) -> None:
    """Read every outcome event from the beginning of the (fresh) event topics, until cancelled."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(topic, p)
            for topic in (BALANCE_EVENTS, ORDER_EVENTS)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            received = time.time()
            for records in batches.values():
                for record in records:
                    envelope = json.loads(record.value)
                    at = record.timestamp / 1000 if record.timestamp and record.timestamp > 0 else received
                    tracker.outcome(envelope["payload"]["command_id"], at, envelope["type"] in SETTLED_TYPES)
    finally:
        await consumer.stop()


# ------------------------------------------------------------------------------------------- setup


async def set_prices(bootstrap: str, client: HttpClient, timeout_s: float = 60) -> None:
    """Tick every benchmark asset to PRICE and wait until the API shows it (trading reads the same)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for asset in ASSETS:
            envelope = tick_envelope(asset, Decimal(PRICE))
            await producer.send_and_wait(PRICES, envelope.to_bytes(), key=asset.encode())
    finally:
        await producer.stop()
    deadline = time.monotonic() + timeout_s
    for asset in ASSETS:
        while True:
            status, body = await client.get_json(f"/v1/assets/{asset}")
            if status == 200 and body.get("price") == PRICE:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{asset} never showed price {PRICE}: {status} {body}")
            await asyncio.sleep(0.2)


async def register_accounts(client: HttpClient, count: int, parallel: int = 16) -> list[Account]:
    run = uuid.uuid4().hex[:8]
    limit = asyncio.Semaphore(parallel)

    async def one(index: int) -> Account:
        username = f"bench_{run}_{index}"
        credentials = {"username": username, "password": PASSWORD}
        async with limit:
            status, created = await client.post_json("/v1/auth/register", credentials)
            if status != 201:
                raise RuntimeError(f"registration answered {status}: {created}")
            status, login = await client.post_json("/v1/auth/login", credentials)
            if status != 200:
                raise RuntimeError(f"login answered {status}: {login}")
        return Account(created["user_id"], login["access_token"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


# ------------------------------------------------------------------------------------- measurement


@dataclass(frozen=True)
class Snapshot:
    at: float
    cpu_s: dict[str, float]
    dynamodb: dict[str, float]
    dynamodb_by_process: dict[str, float]
    redis: dict[str, float]


def read_request_stats(directory: Path) -> tuple[dict[str, float], dict[str, float]]:
    """DynamoDB requests so far, summed over every process's file: by operation, and by process."""
    by_operation: dict[str, float] = {}
    by_process: dict[str, float] = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            counts: dict[str, int] = json.loads(path.read_text())["dynamodb"]
        except (OSError, ValueError, KeyError):
            continue  # being replaced right now: the next snapshot reads it
        service = path.stem.rpartition("-")[0]
        for operation, n in counts.items():
            by_operation[operation] = by_operation.get(operation, 0) + n
            by_process[service] = by_process.get(service, 0) + n
    return by_operation, by_process


async def redis_calls(client: aioredis.Redis) -> dict[str, float]:
    """Calls per command since the server started (INFO commandstats), the benchmark's own INFO left out."""
    stats: dict[str, Any] = await client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): float(values["calls"])
        for name, values in stats.items()
        if name != "cmdstat_info"
    }


async def snapshot(system: System, client: aioredis.Redis) -> Snapshot:
    dynamodb, by_process = read_request_stats(system.stats_dir)
    return Snapshot(
        at=time.time(),
        cpu_s=cpu_by_name(system.pids(), {"load generator": os.getpid()}),
        dynamodb=dynamodb,
        dynamodb_by_process=by_process,
        redis=await redis_calls(client),
    )


def costs(before: Snapshot, after: Snapshot, commands: int, posts: int) -> dict[str, Any]:
    """Per-command costs between two snapshots: DynamoDB requests per command, Redis commands per
    accepted POST, CPU-seconds per 1,000 commands and CPU share of the box, by process."""
    seconds = max(after.at - before.at, 1e-9)
    cpu = {k: v for k, v in counter_delta(before.cpu_s, after.cpu_s).items()}
    dynamodb = counter_delta(before.dynamodb, after.dynamodb)
    redis_delta = counter_delta(before.redis, after.redis)
    cpus = os.cpu_count() or 1
    return {
        "dynamodb_requests_per_command": per_command({"all": sum(dynamodb.values())}, commands)["all"],
        "dynamodb_by_operation": per_command(dynamodb, commands),
        "dynamodb_by_process": per_command(
            counter_delta(before.dynamodb_by_process, after.dynamodb_by_process), commands
        ),
        "redis_commands_per_post": per_command({"all": sum(redis_delta.values())}, posts)["all"],
        "redis_by_command": per_command(redis_delta, posts),
        "cpu_s_per_1000_commands": per_command(cpu, commands, 1000),
        "cpu_s_per_1000_commands_total": per_command({"all": sum(cpu.values())}, commands, 1000)["all"],
        "cpu_percent_of_box": {k: round(100 * v / seconds / cpus, 1) for k, v in sorted(cpu.items())},
    }


# -------------------------------------------------------------------------------------------- load


class Driver:
    """Sends planned commands for registered accounts and records the answers."""

    def __init__(
        self,
        client: HttpClient,
        accounts: list[Account],
        workload: Workload,
        tracker: Tracker | None,
        recorded: Recorded,
        idempotency_keys: bool,
    ) -> None:
        self.client = client
        self.accounts = accounts
        self.workload = workload
        self._tracker = tracker
        self._recorded = recorded
        self._keys = idempotency_keys

    def _head(self, planned: Planned) -> bytes:
        account = self.accounts[planned.account]
        length = len(planned.body)
        if self._keys:
            key = uuid.uuid4().hex
            return self.client.head("POST", planned.path, length, account.token, Idempotency_Key=key)
        cached = account.heads.get((planned.path, length))
        if cached is None:
            cached = account.heads[(planned.path, length)] = self.client.head(
                "POST", planned.path, length, account.token
            )
        return cached

    async def send(self, planned: Planned, sent_at: float) -> asyncio.Future[bool] | None:
        """POST one command; its outcome's future when it was accepted and outcomes are tracked."""
        try:
            status, body = await self.client.send(self._head(planned), planned.body)
        except (HttpError, OSError):
            status, body = 0, b""
        self._recorded.posts.append(Post(sent_at, time.time() - sent_at, status))
        if status != 202:
            self.workload.settle(planned, False)
            if status in (0, 429, 503):
                await asyncio.sleep(0.05)  # the server is overwhelmed: do not spin
            return None
        if self._tracker is None:
            return None
        return self._tracker.accepted(json.loads(body)["command_id"], planned, sent_at)

    def plan(self) -> Planned:
        return self.workload.plan(self.workload.next_account())

    async def closed_loop(self, concurrency: int, until: float, outcome_timeout_s: float) -> None:
        """`concurrency` clients, each sending a command, awaiting its outcome (when tracked), again."""

        async def client() -> None:
            while time.time() < until:
                future = await self.send(self.plan(), time.time())
                if future is not None:
                    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                        await asyncio.wait_for(asyncio.shield(future), outcome_timeout_s)

        await asyncio.gather(*(client() for _ in range(concurrency)))

    async def open_loop(self, rate: float, start: float, until: float) -> None:
        """A command due every 1/rate seconds, sent when due whatever the answers to earlier ones."""
        interval = 1 / rate
        tasks: set[asyncio.Task[Any]] = set()
        due = start
        while due < until:
            wait = due - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            task = asyncio.create_task(self.send(self.plan(), due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            due += interval
        if tasks:
            await asyncio.gather(*tasks)


async def _wait_pending(tracker: Tracker, timeout_s: float, check: Callable[[], None]) -> None:
    """Until nothing is pending, or no outcome came for `timeout_s`."""
    last_progress, last_pending = time.monotonic(), tracker.pending
    while tracker.pending:
        check()
        await asyncio.sleep(0.1)
        if tracker.pending != last_pending:
            last_progress, last_pending = time.monotonic(), tracker.pending
        elif time.monotonic() - last_progress > timeout_s:
            break
    tracker.give_up()


async def drive(system: System, config: LoadConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Set up users and prices, run the load of `config.mode`, return the figures."""
    client = HttpClient("127.0.0.1", system.api_port, config.connections)
    redis_client = aioredis.Redis.from_url(system.redis_url)
    rng = random.Random(config.seed)
    workload = Workload(config.accounts, rng, config.mix, gated=config.mode != "intake-only")
    recorded = Recorded()
    tracker = Tracker(workload, recorded) if config.mode != "intake-only" else None
    listener: asyncio.Task[None] | None = None
    try:
        await set_prices(system.bootstrap, client)
        accounts = await register_accounts(client, config.accounts)
        log(f"{len(accounts)} accounts registered, prices set")
        driver = Driver(client, accounts, workload, tracker, recorded, config.idempotency_keys)
        if tracker is not None:
            ready = asyncio.Event()
            listener = asyncio.create_task(listen_outcomes(system.bootstrap, tracker, ready))
            await asyncio.wait_for(ready.wait(), 60)
        if config.mode == "settle-only":
            assert tracker is not None
            return await _settle_only(system, config, driver, tracker, recorded, redis_client, log)
        if tracker is not None:
            # The clock starts once the consumers have joined their groups and settled these.
            await _fund(system, driver, tracker, log)
        return await _load(system, config, driver, tracker, recorded, redis_client, log)
    finally:
        await cancel_and_wait(listener)
        client.close()
        await redis_client.aclose()


async def _load(
    system: System,
    config: LoadConfig,
    driver: Driver,
    tracker: Tracker | None,
    recorded: Recorded,
    redis_client: aioredis.Redis,
    log: Callable[[str], None],
) -> dict[str, Any]:
    start = time.time()
    window = Window(start + config.warmup_s, start + config.warmup_s + config.duration_s)
    snapshots: list[Snapshot] = []

    async def measure() -> None:
        for at in (window.start, window.end):
            await asyncio.sleep(max(0.0, at - time.time()))
            system.check_alive()
            snapshots.append(await snapshot(system, redis_client))

    how = f"open loop at {config.rate:g}/s" if config.rate else f"closed loop, {config.concurrency} in flight"
    log(f"load: {how}, {config.warmup_s:g} s warm-up + {config.duration_s:g} s measured")
    measuring = asyncio.create_task(measure())
    if config.rate:
        await driver.open_loop(config.rate, start, window.end)
    else:
        await driver.closed_loop(config.concurrency, window.end, config.drain_timeout_s)
    await measuring
    if tracker is not None:
        await _wait_pending(tracker, config.drain_timeout_s, system.check_alive)
    figures = summarize(recorded, window)
    commands = figures["outcomes"] if tracker is not None else figures["accepted"]
    figures.update(costs(snapshots[0], snapshots[1], commands, figures["accepted"]))
    figures["per_command_basis"] = "outcomes" if tracker is not None else "accepted POSTs"
    figures["timeseries"] = per_second(recorded, start, time.time())
    figures["warmup_s"] = config.warmup_s
    return figures


async def _settle_only(
    system: System,
    config: LoadConfig,
    driver: Driver,
    tracker: Tracker,
    recorded: Recorded,
    redis_client: aioredis.Redis,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Load `config.commands` commands onto the command topics with no consumer running, start the
    consumers, and time how fast they drain the backlog.

    The command topics are not ordered with one another (a buy may be handled before the deposit that
    paid for it), so every account is first funded once, and settled, by the ledger alone: the loaded
    commands then only depend on commands of their own topic and account, which are handled in order.
    """
    await _fund(system, driver, tracker, log, apps=("ledger",))
    producer = AIOKafkaProducer(
        bootstrap_servers=system.bootstrap, acks="all", enable_idempotence=False, linger_ms=5
    )
    await producer.start()
    try:
        sends = []
        for _ in range(config.commands):
            planned = driver.plan()
            # The commands of one account are handled in order, so each may count on those before it.
            driver.workload.settle(planned, True)
            command = _COMMANDS[planned.kind].model_validate_json(planned.body)
            account = driver.accounts[planned.account].account_id
            envelope = envelope_for(command, account)
            tracker.accepted(str(envelope.id), planned, envelope.occurred_at.timestamp())
            topic = TOPIC_BY_COMMAND[type(command)]
            sends.append(await producer.send(topic, envelope.to_bytes(), key=account.encode()))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    log(f"{config.commands} commands loaded onto the command topics; starting the consumers")
    before = await snapshot(system, redis_client)
    started = time.time()
    system.start_apps(SETTLING_APPS)
    await _wait_pending(tracker, max(config.drain_timeout_s, 60.0), system.check_alive)
    after = await snapshot(system, redis_client)
    outcomes = sorted(o.settled_at for o in recorded.outcomes)
    if len(outcomes) < 2:
        raise RuntimeError(f"only {len(outcomes)} outcomes; logs in {system.log_dir}")
    window = Window(outcomes[0], outcomes[-1] + 1e-6)
    figures = summarize(recorded, Window(started - 3600, time.time()))
    figures["window_s"] = round(window.seconds, 2)
    figures["settled_per_s"] = round(len(outcomes) / window.seconds, 1)
    figures["settled_per_s_with_startup"] = round(len(outcomes) / (outcomes[-1] - started), 1)
    figures["consumers_started_to_first_outcome_s"] = round(outcomes[0] - started, 2)
    figures["accepted_per_s"] = None
    figures.update(costs(before, after, len(outcomes), 0))
    figures["per_command_basis"] = "outcomes"
    # Time in the queue, not a client's wait: shown apart from the end-to-end figure.
    figures["loaded_to_settled"] = figures.pop("settle_latency")
    figures["timeseries"] = per_second(recorded, started, time.time())
    return figures


FUNDING: Final = "500000.00"


async def _fund(
    system: System,
    driver: Driver,
    tracker: Tracker,
    log: Callable[[str], None],
    apps: tuple[str, ...] = (),
) -> None:
    """One large deposit per account, awaited to its outcome, which the books then count as spendable:
    the mix is then the mix from the first second, not deposits until every account has some cash.
    `apps` are started for it and stopped after (settle-only: the ledger)."""
    system.start_apps(apps)
    limit = asyncio.Semaphore(16)

    async def one(index: int, account: Account) -> bool:
        async with limit:
            status, body = await driver.client.post_json("/v1/deposits", {"amount": FUNDING}, account.token)
        if status != 202:
            raise RuntimeError(f"the funding deposit answered {status}: {body}")
        planned = Planned(index, "funding", None, "/v1/deposits", b"")
        return await tracker.accepted(body["command_id"], planned, time.time())

    funded = [one(i, a) for i, a in enumerate(driver.accounts)]
    settled = await asyncio.wait_for(asyncio.gather(*funded), 300 + len(funded) / 5)
    if not all(settled):
        raise RuntimeError("a funding deposit was rejected")
    system.stop_apps(apps)
    for book in driver.workload.books:
        book.cash += int(Decimal(FUNDING) * 100)
    log(f"{len(funded)} accounts funded with {FUNDING} each")
