"""Settlement benchmark: prints intake and settlement figures for a quick local run. Asserts nothing.

    .venv/bin/python scripts/bench.py [--accounts 20] [--commands 2000] [--concurrency 32]

Starts its own servers (free ports) and the API and consumers as processes, exactly as `make run` does,
then sends deposits over HTTP and measures:
  - intake: requests/s and latency of the 202 (the command is on Kafka when it returns),
  - settlement: commands settled per second, from the first 202 to the last command settled,
  - end to end: accepted_at -> completed_at per command (p50/p95/p99).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.local.processes import Supervisor, app_processes
from infra.local.services import LocalServices, free_port
from infra.provision import provision
from infra.settings import Settings
from tests.support.api import ApiUser, register

BENCH_ENV = {
    "LEDGERFLOW_ENVIRONMENT": "test",
    "LEDGERFLOW_BCRYPT_ROUNDS": "4",
    "LEDGERFLOW_LOG_JSON": "true",
    "LEDGERFLOW_LOG_LEVEL": "WARNING",
    "LEDGERFLOW_RATE_LIMIT_PER_USER": "1000000",
    "LEDGERFLOW_RATE_LIMIT_PER_IP": "1000000",
    "LEDGERFLOW_AUTH_RATE_LIMIT_PER_IP": "1000000",
    "LEDGERFLOW_PRICE_FEED": "off",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(api_url: str, accounts: int, commands: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(base_url=api_url, timeout=60, limits=limits) as client:
        users: list[ApiUser] = [await register(client) for _ in range(accounts)]
        # Warm the path (group joins, connection pools) before measuring.
        warmup = [await u.deposit("1.00") for u in users]
        await asyncio.gather(*(u.wait_for(c) for u, c in zip(users, warmup, strict=True)))

        queue: asyncio.Queue[ApiUser] = asyncio.Queue()
        for i in range(commands):
            queue.put_nowait(users[i % accounts])
        intake_latencies: list[float] = []
        sent: list[tuple[ApiUser, str]] = []

        async def worker() -> None:
            while not queue.empty():
                user = queue.get_nowait()
                began = time.perf_counter()
                command_id = await user.deposit("1.00")
                intake_latencies.append(time.perf_counter() - began)
                sent.append((user, command_id))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        intake_s = time.perf_counter() - started

        per_account = [commands // accounts + (1 if i < commands % accounts else 0) for i in range(accounts)]
        expected = {u.account_id: f"{1 + n:.2f}" for u, n in zip(users, per_account, strict=True)}
        while True:
            balances = await asyncio.gather(*(u.balance() for u in users))
            if all(b == expected[u.account_id] for u, b in zip(users, balances, strict=True)):
                break
            await asyncio.sleep(0.05)
        settled_s = time.perf_counter() - started

        sample = sent[:: max(1, len(sent) // 300)]
        e2e: list[float] = []
        for user, command_id in sample:
            status = await user.wait_for(command_id)
            if status.get("accepted_at") and status.get("completed_at"):
                accepted = datetime.fromisoformat(status["accepted_at"])
                completed = datetime.fromisoformat(status["completed_at"])
                e2e.append((completed - accepted).total_seconds())

    ms = 1000.0
    p50, p99 = statistics.median(intake_latencies) * ms, percentile(intake_latencies, 0.99) * ms
    print(f"accounts={accounts} commands={commands} concurrency={concurrency} cpus={os.cpu_count()}")
    print(
        f"intake: {commands / intake_s:.0f} req/s over {intake_s:.2f} s; 202 p50 {p50:.1f} p99 {p99:.1f} ms"
    )
    print(f"settlement: {commands / settled_s:.0f} commands/s ({commands} settled in {settled_s:.2f} s)")
    if e2e:
        q50, q95, q99 = (percentile(e2e, q) * ms for q in (0.5, 0.95, 0.99))
        print(f"accepted->completed: p50 {q50:.0f} ms, p95 {q95:.0f} ms, p99 {q99:.0f} ms (n={len(e2e)})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.accounts < 1 or args.commands < args.accounts or args.concurrency < 1:
        parser.error("need accounts >= 1, commands >= accounts, concurrency >= 1")
    with (
        tempfile.TemporaryDirectory() as logs,
        LocalServices(
            kafka_port=free_port(),
            dynamodb_port=free_port(),
            redis_port=free_port(),
            log_dir=Path(logs),
            reuse_running_redis=False,
        ) as services,
    ):
        env = {**os.environ, **BENCH_ENV, **services.endpoints.as_env()}
        os.environ.update(env)
        asyncio.run(provision(Settings()))
        api_port = free_port()
        with (Path(logs) / "apps.log").open("w") as out:
            supervisor = Supervisor(env, out=out)
            for process in app_processes(api_port):
                supervisor.start(process)
            try:
                url = f"http://127.0.0.1:{api_port}"
                deadline = time.monotonic() + 90
                while True:
                    try:
                        if httpx.get(f"{url}/v1/health/ready", timeout=5).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit("the API did not become ready")
                    time.sleep(0.2)
                asyncio.run(run(url, args.accounts, args.commands, args.concurrency))
            finally:
                supervisor.stop_all(grace_s=10)


if __name__ == "__main__":
    main()
