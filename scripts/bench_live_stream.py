"""How many `GET /v1/stream` clients one API process holds, and how soon they see a settlement. Asserts
nothing; prints one line per level.

    .venv/bin/python scripts/bench_live_stream.py [--levels 250,1000,2000] [--deposits 20] [--ticks 5]

Starts a system of its own (servers on free ports, one API process with one worker, the ledger), then
for each level opens that many streams (10 per user) and measures, with every stream open:
- settlement -> seen: for `--deposits` deposits of one user, the time from the outcome's `completed_at`
  to the first and to the last of that user's 10 streams receiving the `settled` event;
- tick fan-out: for `--ticks` price ticks, the time from the tick's `at` to each stream receiving it;
- the API process's resident memory and CPU while the streams sit idle (heartbeats only) for 10 s.
The load generator runs on the same machine, in one process, so its own CPU limits the fan-out figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from aiokafka import AIOKafkaProducer
from httpx_sse import aconnect_sse

from infra.settings import Settings
from producers.prices.feed import tick_envelope
from schemas.topics import PRICES
from tests.support.api import ApiUser, register
from tests.support.isolated import isolated_system

STREAMS_PER_USER = 10
ENV = {
    "LEDGERFLOW_ENVIRONMENT": "test",
    "LEDGERFLOW_BCRYPT_ROUNDS": "4",
    "LEDGERFLOW_LOG_JSON": "true",
    "LEDGERFLOW_LOG_LEVEL": "WARNING",
    "LEDGERFLOW_PRICE_FEED": "off",
    "LEDGERFLOW_API_WORKERS": "1",
    "LEDGERFLOW_KAFKA_SESSION_TIMEOUT_MS": "3000",
    "LEDGERFLOW_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    **{
        f"LEDGERFLOW_{name}": "100000000"
        for name in (
            "RATE_LIMIT_PER_USER",
            "RATE_LIMIT_PER_IP",
            "AUTH_RATE_LIMIT_PER_IP",
            "AUTH_RATE_LIMIT_PER_USERNAME",
            "RATE_LIMIT_READS_PER_USER",
            "RATE_LIMIT_ANONYMOUS_PER_IP",
        )
    },
}


class Receiver:
    """What every stream received: settled commands and ticks, with the time they arrived."""

    def __init__(self) -> None:
        self.settled: dict[str, list[float]] = defaultdict(list)
        self.completed_at: dict[str, float] = {}
        self.ticks: dict[str, list[float]] = defaultdict(list)
        self.open = 0
        self._arrived = asyncio.Event()

    async def wait_until(self, done: Callable[[], bool], timeout_s: float = 30) -> None:
        """Until `done()` holds after an arrival, or the timeout passes."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not done():
                    self._arrived.clear()
                    await self._arrived.wait()

    async def follow(self, client: httpx.AsyncClient, user: ApiUser, opened: asyncio.Event) -> None:
        async with aconnect_sse(client, "GET", "/v1/stream", headers=dict(user.auth)) as source:
            self.open += 1
            opened.set()
            async for sse in source.aiter_sse():
                now = time.time()
                self._arrived.set()
                if sse.event == "price":
                    self.ticks[json.loads(sse.data)["at"]].append(now)
                elif sse.event == "command":
                    data = json.loads(sse.data)
                    if data["status"] == "settled":
                        self.settled[data["command_id"]].append(now)
                        self.completed_at[data["command_id"]] = datetime.fromisoformat(
                            data["completed_at"]
                        ).timestamp()


def percentiles(values: Sequence[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)

    def ms(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return f"p50 {ms(0.5):.1f} / p99 {ms(0.99):.1f} / max {ordered[-1] * 1000:.1f} ms"


def process_figures(pid: int) -> tuple[float, float]:
    """Resident MB and CPU-seconds so far of the process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss_kb / 1024, cpu_s


async def level(
    url: str, settings: Settings, api_pid: int, baseline_mb: float, streams: int, deposits: int, ticks: int
) -> None:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        users = [await register(client) for _ in range(max(1, streams // STREAMS_PER_USER))]
        receiver = Receiver()
        followers = []
        for index in range(streams):
            opened = asyncio.Event()
            user = users[index % len(users)]
            followers.append(asyncio.create_task(receiver.follow(client, user, opened)))
            await opened.wait()
        _, cpu_before = process_figures(api_pid)
        await asyncio.sleep(10)
        rss_idle, cpu_idle = process_figures(api_pid)

        watcher = users[0]
        seen_first, seen_last = [], []
        for n in range(deposits):
            command_id = await watcher.deposit(f"{n + 1}.00")
            per_user = streams // len(users)
            await receiver.wait_until(lambda: len(receiver.settled[command_id]) >= per_user)  # noqa: B023
            arrivals = receiver.settled[command_id]
            if arrivals:
                seen_first.append(min(arrivals) - receiver.completed_at[command_id])
                seen_last.append(max(arrivals) - receiver.completed_at[command_id])

        fan_out: list[float] = []
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
        await producer.start()
        for n in range(ticks):
            before = set(receiver.ticks)
            # Stamped as it is sent, on a producer already connected: the delay is the system's alone.
            tick = tick_envelope("BTC", Decimal(50_000 + n))
            await producer.send_and_wait(PRICES, tick.to_bytes(), key=b"BTC")

            def everyone_has_it() -> bool:
                new = set(receiver.ticks) - before  # noqa: B023
                return bool(new) and len(receiver.ticks[next(iter(new))]) >= streams

            await receiver.wait_until(everyone_has_it)
            for at in set(receiver.ticks) - before:
                sent = datetime.fromisoformat(at).timestamp()
                fan_out += [arrived - sent for arrived in receiver.ticks[at]]
            await asyncio.sleep(0.2)
        await producer.stop()

        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
    idle_cpu_pct = (cpu_idle - cpu_before) / 10 * 100
    print(
        f"{streams:>6} streams | open {receiver.open} | API RSS {rss_idle:.0f} MB "
        f"({(rss_idle - baseline_mb) * 1024 / streams:.0f} KB per stream) CPU idle {idle_cpu_pct:.1f} % | "
        f"settled->first stream {percentiles(seen_first)} | ->last of 10 {percentiles(seen_last)} | "
        f"tick->every stream {percentiles(fan_out)}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="250,1000,2000,4000")
    parser.add_argument("--deposits", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args(argv)
    # The launcher reads the worker count from this process's environment.
    os.environ.update(ENV)
    with (
        tempfile.TemporaryDirectory() as tmp,
        isolated_system(Path(tmp), ENV, apps=("api", "ledger")) as system,
    ):
        api_pid = system.supervisor.pid("api")
        assert api_pid is not None
        rss, _ = process_figures(api_pid)
        print(f"API process {api_pid}, {rss:.0f} MB resident with no stream open", flush=True)
        for streams in (int(n) for n in args.levels.split(",")):
            asyncio.run(
                level(system.api_url, system.settings, api_pid, rss, streams, args.deposits, args.ticks)
            )


if __name__ == "__main__":
    main()
