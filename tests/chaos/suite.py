"""The fault suite: random commands under random SIGKILLs, a full replay, then proof nothing was lost or doubled.

It starts its own servers and processes (as `make run` and the test fixtures do), so it never touches
a running system.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import httpx

from consumers.registry import CONSUMERS, PRICE_FEED, SETTLING
from infra.cli import broker
from infra.dynamo.client import as_decimal, dynamodb_client, from_item
from infra.dynamo.command_statuses import status_of
from infra.dynamo.keys import COMMAND_INDEX_KEY
from infra.local.install import PROJECT_ROOT
from infra.local.processes import AppProcess, Supervisor, app_processes
from infra.local.services import LocalServices, free_metrics_ports, free_port
from infra.provision import provision
from infra.settings import Settings
from schemas.topics import COMMAND_TOPICS
from tests.chaos.model import AccountCheck, Sent, StoredEvent, check_account
from tests.chaos.workload import plan_commands, priced_assets, send_all
from tests.support.api import ApiUser, register

CHAOS_ENV = {
    "LEDGERFLOW_ENVIRONMENT": "test",
    "LEDGERFLOW_BCRYPT_ROUNDS": "4",
    "LEDGERFLOW_LOG_JSON": "true",
    "LEDGERFLOW_LOG_LEVEL": "WARNING",
    "LEDGERFLOW_DYNAMODB_TABLE": "ledgerflow-chaos",
    "LEDGERFLOW_KAFKA_SESSION_TIMEOUT_MS": "3000",
    "LEDGERFLOW_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "LEDGERFLOW_CONSUMER_GRACEFUL_TIMEOUT_S": "10",
    "LEDGERFLOW_RATE_LIMIT_PER_USER": "1000000",
    "LEDGERFLOW_RATE_LIMIT_PER_IP": "1000000",
    "LEDGERFLOW_AUTH_RATE_LIMIT_PER_IP": "1000000",
    "LEDGERFLOW_AUTH_RATE_LIMIT_PER_USERNAME": "1000000",
    "LEDGERFLOW_RATE_LIMIT_READS_PER_USER": "1000000",
    "LEDGERFLOW_RATE_LIMIT_ANONYMOUS_PER_IP": "1000000",
    "LEDGERFLOW_PRICE_TICK_INTERVAL_S": "1",
}
# Apps never killed: the price feed (prices are not money). The API is killed `api_kills` times.
NOT_KILLED = {"api", PRICE_FEED.name}
# Servers SIGKILLed and restarted on their data (the suite runs them durable, as `make run` does).
SERVERS = ("redis", "tansu", "dynamodb")
TERMINAL = {"settled", "rejected"}


@dataclass(frozen=True)
class ChaosConfig:
    commands: int = 2000
    accounts: int = 50
    kills: int = 10
    # SIGKILLs of a server (each of SERVERS at least once) and of the API, beside the consumer kills.
    server_kills: int = 3
    api_kills: int = 2
    concurrency: int = 12
    seed: int | None = None
    # Seconds between kills (uniform in this range), and how long a killed process stays down.
    kill_gap_s: tuple[float, float] = (1.0, 3.0)
    down_s: tuple[float, float] = (0.1, 1.5)
    drain_timeout_s: float = 300.0
    log_dir: Path | None = None


@dataclass
class Figures:
    seed: int = 0
    trading_included: bool = False
    accounts: int = 0
    commands_sent: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    refused_at_intake: dict[str, int] = field(default_factory=dict)
    intake_failures: int = 0
    kills: int = 0
    killed: dict[str, int] = field(default_factory=dict)
    server_kills: int = 0
    api_kills: int = 0
    # Seconds from a server's SIGKILL until it answered again, by server.
    server_recovery_s: dict[str, list[float]] = field(default_factory=dict)
    intake_retries: int = 0
    replays: int = 0
    settled: int = 0
    rejected: int = 0
    without_terminal_status: int = 0
    duplicated_event_ids: int = 0
    accounts_mismatched: int = 0
    reconcile_exit: int | None = None
    problems: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0

    def failures(self, config: ChaosConfig) -> list[str]:
        found = []
        if self.commands_sent < config.commands * 0.9:
            found.append(f"only {self.commands_sent} of {config.commands} commands were accepted")
        if self.kills < config.kills:
            found.append(f"only {self.kills} of {config.kills} kills happened")
        if self.server_kills < config.server_kills or self.api_kills < config.api_kills:
            found.append(
                f"only {self.server_kills} of {config.server_kills} server kills and "
                f"{self.api_kills} of {config.api_kills} API kills happened"
            )
        if self.replays < 1:
            found.append("no replay was executed")
        if self.intake_failures:
            found.append(f"{self.intake_failures} commands could not be sent")
        if self.without_terminal_status:
            found.append(f"{self.without_terminal_status} commands without a terminal status")
        if self.duplicated_event_ids:
            found.append(f"{self.duplicated_event_ids} duplicated event ids")
        if self.accounts_mismatched:
            found.append(f"{self.accounts_mismatched} accounts differ from the model")
        if self.reconcile_exit != 0:
            found.append(f"ledgerflow reconcile exited {self.reconcile_exit}")
        return found


class _Phases:
    def __init__(self, figures: Figures, out: TextIO) -> None:
        self._figures = figures
        self._out = out
        self._began = time.monotonic()

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self._figures.phases[name] = round(now - self._began, 1)
        self._out.write(f"[chaos {now - self._began:6.1f}s] {name}\n")
        self._out.flush()


def run(config: ChaosConfig, out: TextIO = sys.stdout) -> Figures:
    began = time.monotonic()
    figures = Figures(seed=config.seed if config.seed is not None else random.randrange(2**31))
    rng = random.Random(figures.seed)
    phases = _Phases(figures, out)
    log_dir = config.log_dir or PROJECT_ROOT / ".cache" / "logs" / f"chaos-{os.getpid()}"
    log_dir.mkdir(parents=True, exist_ok=True)
    services = LocalServices.beside(log_dir, data_dir=log_dir / "data")
    with services, (log_dir / "apps.log").open("w", buffering=1) as app_log:
        env = {**os.environ, **CHAOS_ENV, **services.endpoints.as_env()}
        os.environ.update(env)
        settings = Settings()
        asyncio.run(provision(settings))
        phases.mark("servers ready")
        supervisor = Supervisor(env, out=app_log)
        api_port = free_port()
        specs = {spec.name: spec for spec in app_processes(api_port, metrics_ports=free_metrics_ports())}
        for spec in specs.values():
            supervisor.start(spec)
        try:
            _exercise(config, figures, rng, phases, services, supervisor, specs, settings, env, api_port)
        finally:
            supervisor.stop_all(grace_s=5)
    figures.duration_s = round(time.monotonic() - began, 1)
    out.write(f"[chaos] logs in {log_dir}\n")
    return figures


def _exercise(
    config: ChaosConfig,
    figures: Figures,
    rng: random.Random,
    phases: _Phases,
    services: LocalServices,
    supervisor: Supervisor,
    specs: dict[str, AppProcess],
    settings: Settings,
    env: dict[str, str],
    api_port: int,
) -> None:
    api_url = f"http://127.0.0.1:{api_port}"
    users, prices = asyncio.run(_prepare(api_url, config.accounts))
    figures.accounts = len(users)
    figures.trading_included = bool(prices) and "trading" in specs
    phases.mark(f"system ready, {len(users)} accounts, trading {'on' if figures.trading_included else 'off'}")

    planned = plan_commands(rng, config.commands, len(users), prices if figures.trading_included else {})
    victims = [name for name in specs if name not in NOT_KILLED]
    stop = threading.Event()
    faults = _fault_plan(config, rng, victims, "api" in specs)
    killer = threading.Thread(
        target=_kill_loop,
        args=(config, figures, rng, services, supervisor, faults, stop),
        name="chaos-killer",
    )
    killer.start()
    try:
        result = asyncio.run(_send(api_url, users, planned, config.concurrency))
        # Kills still due happen while the system works through its backlog.
        killer.join(timeout=len(faults) * (config.kill_gap_s[1] + config.down_s[1] + 15))
    finally:
        stop.set()
        killer.join()
    figures.commands_sent = len(result.sent)
    figures.refused_at_intake = result.refused
    figures.intake_failures = result.failed
    figures.intake_retries = result.retries
    for command in result.sent:
        figures.by_kind[command.kind] = figures.by_kind.get(command.kind, 0) + 1
    phases.mark(
        f"sent {figures.commands_sent} commands, {figures.kills} consumer kills, "
        f"{figures.server_kills} server kills, {figures.api_kills} API kills"
    )

    waiting = asyncio.run(_wait_terminal(settings, result.sent, config.drain_timeout_s))
    # Not a failure yet: the replay below may still settle them, and the verification counts what is left.
    phases.mark(
        "every command has an outcome"
        if not waiting
        else f"{waiting} commands still without an outcome after {config.drain_timeout_s:g} s"
    )

    consumers = [name for name in specs if name != "api"]
    for name in consumers:
        supervisor.stop(name, grace_s=10)
    groups = _replayed_groups(specs)
    # Tansu may keep listing a member that left; the replay's own join settles that, so wait briefly.
    asyncio.run(_wait_groups_empty(settings, list(groups), timeout_s=10))
    phases.mark("consumers stopped")
    figures.replays = _replay(groups, env)
    phases.mark(f"{figures.replays} replays executed")
    for name in consumers:
        supervisor.start(specs[name])
    asyncio.run(_wait_drained(settings, config.drain_timeout_s))
    phases.mark("replay drained")

    asyncio.run(_verify(settings, result.sent, figures))
    figures.reconcile_exit = _cli(["reconcile"], env).returncode
    phases.mark("verified")


async def _prepare(api_url: str, accounts: int) -> tuple[list[ApiUser], dict[str, Decimal]]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        deadline = time.monotonic() + 120
        while True:
            try:
                if (await client.get("/v1/health/ready")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not become ready")
            await asyncio.sleep(0.3)
        canary = await register(client)
        await canary.wait_for(await canary.deposit("1"), timeout_s=120)
        # The price feed ticks every second; under load its first ticks can take a while to land.
        prices = await priced_assets(client, wait_s=60)
    # The users get their own clients: they outlive this function.
    client = httpx.AsyncClient(base_url=api_url, timeout=60)
    limit = asyncio.Semaphore(8)

    async def one() -> ApiUser:
        async with limit:
            return await register(client)

    users = await asyncio.gather(*(one() for _ in range(accounts)))
    return list(users), prices


async def _send(api_url: str, users: list[ApiUser], planned: Any, concurrency: int) -> Any:
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        for user in users:
            user.client = client
        return await send_all(users, planned, concurrency)


@dataclass(frozen=True)
class Fault:
    kind: str  # "consumer", "server" or "api"
    name: str


def _fault_plan(config: ChaosConfig, rng: random.Random, consumers: list[str], with_api: bool) -> list[Fault]:
    """Every consumer and every server killed at least once, the API `api_kills` times, in random order."""
    consumer_kills = [Fault("consumer", name) for name in rng.sample(consumers, len(consumers))]
    consumer_kills += [Fault("consumer", rng.choice(consumers)) for _ in range(config.kills - len(consumers))]
    server_kills = [Fault("server", SERVERS[i % len(SERVERS)]) for i in range(config.server_kills)]
    api_kills = [Fault("api", "api") for _ in range(config.api_kills if with_api else 0)]
    # The first consumer kills keep their order (each consumer once); the other faults fall among them.
    plan = consumer_kills[: config.kills]
    for fault in [*server_kills, *api_kills]:
        plan.insert(rng.randrange(len(plan) + 1), fault)
    return plan


def _kill_loop(
    config: ChaosConfig,
    figures: Figures,
    rng: random.Random,
    services: LocalServices,
    supervisor: Supervisor,
    faults: list[Fault],
    stop: threading.Event,
) -> None:
    for fault in faults:
        if stop.wait(rng.uniform(*config.kill_gap_s)):
            return
        label = fault.name if fault.kind != "server" else f"server:{fault.name}"
        figures.killed[label] = figures.killed.get(label, 0) + 1
        if fault.kind == "server":
            killed_at = time.monotonic()
            # `restart` reaps the killed process and starts it again on its port and its data.
            os.kill(services.pids()[fault.name], signal.SIGKILL)
            figures.server_kills += 1
            time.sleep(rng.uniform(*config.down_s))
            services.restart(fault.name)
            recovery = figures.server_recovery_s.setdefault(fault.name, [])
            recovery.append(round(time.monotonic() - killed_at, 2))
            continue
        supervisor.kill(fault.name)
        if fault.kind == "api":
            figures.api_kills += 1
        else:
            figures.kills += 1
        time.sleep(rng.uniform(*config.down_s))
        supervisor.restart(fault.name, grace_s=5)


def _replayed_groups(specs: dict[str, AppProcess]) -> dict[str, list[str]]:
    """The groups that read command topics, with those topics: every command is handled again."""
    return {
        group: [t for t in CONSUMERS[group].reads if t in COMMAND_TOPICS]
        for group in SETTLING
        if group in specs and any(t in COMMAND_TOPICS for t in CONSUMERS[group].reads)
    }


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.main", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _replay(groups: dict[str, list[str]], env: dict[str, str]) -> int:
    def one(group: str, topics: list[str]) -> bool:
        args = ["replay", group, *(a for t in topics for a in ("--topic", t)), "--to-earliest", "--execute"]
        for _ in range(3):
            done = _cli(args, env)
            if done.returncode == 0:
                return True
            sys.stdout.write(f"[chaos] replay {group} failed, retrying: {done.stderr.strip()}\n")
            time.sleep(5)
        return False

    # Different groups: their join-commit-leave rounds do not interfere, so they run side by side.
    results: list[bool] = []
    threads = [threading.Thread(target=lambda g=g, t=t: results.append(one(g, t))) for g, t in groups.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(results)


async def _wait_groups_empty(settings: Settings, groups: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with broker.admin_client(settings) as admin:
        while True:
            states = [await broker.group_state(admin, g) for g in groups]
            if not any(s.active for s in states) or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.5)


async def _statuses(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every client command's terminal status, from the records the API reads it from (those, and only
    those, carry the command id the index is keyed by)."""
    found: dict[str, dict[str, Any]] = {}
    async with dynamodb_client(settings) as client:
        where = {
            "FilterExpression": "attribute_exists(#id)",
            "ExpressionAttributeNames": {"#id": COMMAND_INDEX_KEY},
        }
        async for item in _scan_where(client, settings.dynamodb_table, where):
            command_id = uuid.UUID(str(item[COMMAND_INDEX_KEY]))
            found[str(command_id)] = status_of(command_id, item).model_dump(mode="json")
    return found


async def _scan(client: Any, table: str, prefix: str) -> Any:
    where = {
        "FilterExpression": "begins_with(SK, :prefix)",
        "ExpressionAttributeValues": {":prefix": {"S": prefix}},
    }
    async for item in _scan_where(client, table, where):
        yield item


async def _scan_where(client: Any, table: str, where: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {"TableName": table, **where, "ConsistentRead": True}
    while True:
        page = await client.scan(**kwargs)
        for item in page.get("Items", []):
            yield from_item(item)
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


async def _wait_terminal(settings: Settings, sent: list[Sent], timeout_s: float) -> int:
    """How many of `sent` still have no terminal status when they all have one or `timeout_s` is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = await _statuses(settings)
        waiting = sum(1 for c in sent if statuses.get(c.command_id, {}).get("status") not in TERMINAL)
        if not waiting or time.monotonic() >= deadline:
            return waiting
        await asyncio.sleep(1)


async def _wait_drained(settings: Settings, timeout_s: float) -> None:
    """Every group's committed offset at the end of every partition it reads, twice in a row; fails
    once the lag has not shrunk for `timeout_s` (a replay settled one command per transaction takes
    minutes, and is fine as long as it moves)."""
    deadline = time.monotonic() + timeout_s
    least_lag: int | None = None
    quiet = 0
    async with broker.admin_client(settings) as admin, broker.reader(settings) as consumer:
        topics = set(await broker.list_topics(admin))
        # The settling groups only: the price recorder never drains while the feed ticks.
        wanted = {g: [t for t in CONSUMERS[g].reads if t in topics] for g in SETTLING}
        while time.monotonic() < deadline:
            groups = await broker.existing_groups(admin)
            ends = await broker.topic_ends(
                consumer, sorted({t for ts in wanted.values() for t in ts}), settings
            )
            lag = 0
            for group, group_topics in wanted.items():
                tps = [tp for tp in ends if tp.topic in group_topics and ends[tp] > 0]
                if not tps:
                    continue
                if group not in groups:
                    lag += sum(ends[tp] for tp in tps)
                    continue
                committed = await broker.committed_offsets(admin, group, tps)
                lag += sum(ends[tp] - (committed[tp] or 0) for tp in tps)
            quiet = quiet + 1 if lag == 0 else 0
            if quiet >= 2:
                return
            if least_lag is None or lag < least_lag:
                least_lag, deadline = lag, time.monotonic() + timeout_s
            await asyncio.sleep(1)
    raise RuntimeError(f"the consumers' lag stayed at {least_lag} or more for {timeout_s:g} s")


async def _verify(settings: Settings, sent: list[Sent], figures: Figures) -> None:
    statuses = await _statuses(settings)
    figures.without_terminal_status = sum(
        1 for c in sent if statuses.get(c.command_id, {}).get("status") not in TERMINAL
    )
    figures.settled = sum(1 for c in sent if statuses.get(c.command_id, {}).get("status") == "settled")
    figures.rejected = sum(1 for c in sent if statuses.get(c.command_id, {}).get("status") == "rejected")
    events: dict[str, list[StoredEvent]] = defaultdict(list)
    balances: dict[str, Decimal] = {}
    async with dynamodb_client(settings) as client:
        async for item in _scan(client, settings.dynamodb_table, "EVENT#"):
            account = str(item["PK"]).removeprefix("ACCOUNT#")
            events[account].append(
                StoredEvent(
                    str(item["SK"]),
                    str(item["event_id"]),
                    str(item["type"]),
                    item.get("payload") or {},
                    int(item.get("balance_version", 0)),
                )
            )
        async for item in _scan(client, settings.dynamodb_table, "BALANCE#"):
            balances[str(item["PK"]).removeprefix("ACCOUNT#")] = as_decimal(item.get("available"))
    ids = [e.event_id for account in events.values() for e in account]
    figures.duplicated_event_ids = len(ids) - len(set(ids))
    by_account: dict[str, list[Sent]] = defaultdict(list)
    for command in sent:
        by_account[command.account_id].append(command)
    days = {
        command_id: _day(status.get("accepted_at"))
        for command_id, status in statuses.items()
        if status.get("accepted_at")
    }
    checks: list[AccountCheck] = [
        check_account(
            account,
            commands,
            events.get(account, []),
            {k: v for k, v in days.items() if v is not None},
            balances.get(account),
        )
        for account, commands in by_account.items()
    ]
    bad = [c for c in checks if c.problems]
    figures.accounts_mismatched = len(bad)
    for check in bad[:5]:
        figures.problems.extend(f"account {check.account_id}: {p}" for p in check.problems[:5])


def _day(value: Any) -> date | None:
    try:
        return datetime.fromisoformat(str(value)).date()
    except ValueError:
        return None
