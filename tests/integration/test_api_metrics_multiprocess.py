"""With several API workers, one `/metrics` answer counts the requests every worker served."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from infra.local.processes import METRICS_DIR_PREFIX, Supervisor, app_processes
from infra.local.services import free_port

pytestmark = pytest.mark.integration

LIVE = "/v1/health/live"
REQUESTS_TOTAL = "ledgerflow_http_requests_total"


def _counted(samples: Iterator[tuple[str, dict[str, str], float]], route: str) -> float:
    return sum(
        value for name, labels, value in samples if name == REQUESTS_TOTAL and labels["route"] == route
    )


def _scraped(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, sample.labels, sample.value


def _by_worker(directory: Path, route: str) -> dict[int, float]:
    """What each worker's own file holds for `route` (each worker writes `counter_<pid>.db`)."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        samples = ((s.name, s.labels, s.value) for metric in merged for s in metric.samples)
        counts[int(path.stem.rpartition("_")[2])] = _counted(samples, route)
    return counts


def _metrics_dirs(launcher_pid: int) -> list[Path]:
    """The directories a launch of the API made (`infra.local.processes.fresh_metrics_dir`)."""
    return list(Path(tempfile.gettempdir()).glob(f"{METRICS_DIR_PREFIX}{launcher_pid}-*"))


def _metrics_dir(launcher_pid: int) -> Path:
    found = _metrics_dirs(launcher_pid)
    assert len(found) == 1, found
    return found[0]


async def _get(url: str) -> httpx.Response:
    """One request on a connection of its own, so the kernel may hand it to either worker."""
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url)


async def _wait_until_serving(url: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await _get(f"{url}/v1/health/ready")  # 200 or 503: a worker answers either way
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_two_workers_count_every_request_in_each_metrics_answer(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = next(p for p in app_processes(port, api_workers=2) if p.name == "api")
    with (tmp_path / "api.log").open("w", buffering=1) as out:
        supervisor = Supervisor({**os.environ, **env}, out=out)
        supervisor.start(api)
        try:
            await _wait_until_serving(url)
            launcher = supervisor.pid("api")
            assert launcher is not None
            directory = _metrics_dir(launcher)

            # Batches of concurrent requests, each on a fresh connection, until both workers served some.
            sent = 0
            for _ in range(50):
                answers = await asyncio.gather(*(_get(f"{url}{LIVE}") for _ in range(10)))
                assert all(answer.status_code == 200 for answer in answers)
                sent += len(answers)
                by_worker = _by_worker(directory, LIVE)
                if sent >= 30 and len([n for n in by_worker.values() if n > 0]) == 2:
                    break
            assert len(by_worker) == 2 and all(by_worker.values()), by_worker
            assert sum(by_worker.values()) == sent

            # Every scrape, whichever worker answers it, reports all of them.
            for _ in range(30):
                scrape = await _get(f"{url}/metrics")
                assert scrape.status_code == 200
                assert _counted(_scraped(scrape.text), LIVE) == sent, scrape.text
                if len(_by_worker(directory, "/metrics")) == 2:
                    break
            assert len(_by_worker(directory, "/metrics")) == 2, "one worker answered every scrape"

            # A launch killed outright leaves its directory; the next launch removes it and starts at zero.
            supervisor.kill("api")
            supervisor.restart("api", grace_s=10)
            await _wait_until_serving(url)
            relaunched = supervisor.pid("api")
            assert relaunched is not None and relaunched != launcher
            assert not directory.exists()
            assert _metrics_dir(relaunched) != directory
            scrape = await _get(f"{url}/metrics")
            assert _counted(_scraped(scrape.text), LIVE) == 0
        finally:
            supervisor.stop_all(grace_s=10)
    assert not _metrics_dirs(relaunched)
