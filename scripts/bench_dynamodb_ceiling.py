"""DynamoDB Local alone: what the settlement's own reads and writes cost the server. Asserts nothing.

    .venv/bin/python scripts/bench_dynamodb_ceiling.py [--seconds 20] [--warmup 5]

Starts the local servers on free ports (only DynamoDB Local is used; the options `make run` gives it),
provisions the table, and drives it with the ledger's real settlement (`Settler` + `DynamoLedgerStore`:
one BatchGetItem, then one TransactWriteItems per round) over deposits built in this process, with no
Kafka and no other server. The writers own disjoint accounts, so no write is refused: what is measured
is the server's cost per settled command, and how much of the box it takes at its most. Per shape it
prints commands/s, the server's and this client's CPU-ms per command, and the server's share of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.procstat import all_stats, tree_cpu_s
from bench.system import BENCH_ENV, settings_from
from consumers.common.settle import Inbound, Settler
from consumers.ledger.decisions import CashLimits
from consumers.ledger.handlers import LedgerRules
from infra.dynamo.client import dynamodb_client
from infra.dynamo.ledger_store import DynamoLedgerStore
from infra.local.services import LocalServices
from infra.provision import provision
from producers.commands import envelope_for
from schemas.commands import Deposit
from schemas.envelope import Envelope

# Commands per settle call, and concurrent writers (each with its own accounts). More writers add nothing
# (measured: batched, 4 writers settled 1,269/s against 1,475/s with 2): the server's share stays near
# 0.6 of a core with the box not saturated, as if it applied one request at a time.
SHAPES = {"one": (1, 8), "batched": (100, 2)}


class NoPublisher:
    async def publish(self, topic: str, events: Sequence[Envelope[Any]]) -> None:
        return None

    async def publish_raw(self, topic: str, key: str, values: Sequence[bytes]) -> None:
        return None


async def drive(
    env: dict[str, str],
    server_pid: int,
    batch: int,
    writers: int,
    accounts: int,
    seconds: float,
    warmup: float,
) -> dict[str, float]:
    settings = settings_from(env)
    limits = CashLimits(Decimal(10) ** 12, Decimal(10) ** 12)
    async with dynamodb_client(settings) as client:
        store = DynamoLedgerStore(client, settings.dynamodb_table)
        owned = [[f"acct-{w}-{a}" for a in range(max(1, accounts // writers))] for w in range(writers)]
        settled = 0
        measuring = False

        async def writer(mine: list[str]) -> None:
            nonlocal settled
            settler = Settler(LedgerRules(limits), store, NoPublisher())
            cycle = itertools.cycle(mine)
            while True:
                deposits = [envelope_for(Deposit(amount=Decimal("1.00")), next(cycle)) for _ in range(batch)]
                await settler.settle([Inbound(d) for d in deposits])
                if measuring:
                    settled += batch

        tasks = [asyncio.create_task(writer(mine)) for mine in owned]
        await asyncio.sleep(warmup)
        measuring = True
        server_before = tree_cpu_s(server_pid, all_stats())
        client_before, began = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        server_s = tree_cpu_s(server_pid, all_stats()) - server_before
        client_s, elapsed = time.process_time() - client_before, time.perf_counter() - began
        measuring = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "commands_per_s": settled / elapsed,
        "server_cpu_ms_per_command": 1000 * server_s / max(settled, 1),
        "client_cpu_ms_per_command": 1000 * client_s / max(settled, 1),
        "server_core_share": server_s / elapsed,
    }


def run(shape: str, accounts: int, seconds: float, warmup: float) -> dict[str, float]:
    batch, writers = SHAPES[shape]
    with tempfile.TemporaryDirectory(prefix="bench-dynamodb-") as tmp:
        services = LocalServices.beside(Path(tmp) / "logs")
        with services:
            env = {**BENCH_ENV, **services.endpoints.as_env(), "LEDGERFLOW_STATS_DIR": ""}
            asyncio.run(provision(settings_from(env)))
            pid = services.pids()["dynamodb"]
            return asyncio.run(drive(env, pid, batch, writers, accounts, seconds, warmup))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--accounts", type=int, nargs="+", default=[20, 2000])
    args = parser.parse_args()
    columns = ("commands/s", "server CPU-ms/cmd", "client CPU-ms/cmd", "server cores")
    print(f"{'shape':<8} {'accounts':>8}  " + "  ".join(f"{c:>17}" for c in columns))
    for accounts in args.accounts:
        for shape in SHAPES:
            r = run(shape, accounts, args.seconds, args.warmup)
            figures = (
                f"{r['commands_per_s']:.0f}",
                f"{r['server_cpu_ms_per_command']:.2f}",
                f"{r['client_cpu_ms_per_command']:.2f}",
                f"{r['server_core_share']:.2f}",
            )
            print(f"{shape:<8} {accounts:>8}  " + "  ".join(f"{f:>17}" for f in figures))


if __name__ == "__main__":
    main()
