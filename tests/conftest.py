"""Shared fixtures. Integration tests run against real Kafka, DynamoDB and Redis servers.

With a Docker engine the servers come from testcontainers; without one (as on our build machines) the
same local processes `make run` uses are started on free ports. Either way the API and every consumer
run as separate processes, exactly as in production.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.local.processes import AppProcess, Supervisor, app_processes
from infra.local.services import LocalServices, ServiceEndpoints, free_metrics_ports, free_port
from infra.provision import provision
from infra.settings import Settings
from tests.support.api import ApiUser, register

TEST_ENV = {
    "LEDGERFLOW_ENVIRONMENT": "test",
    "LEDGERFLOW_BCRYPT_ROUNDS": "4",
    "LEDGERFLOW_LOG_JSON": "true",
    "LEDGERFLOW_DYNAMODB_TABLE": "ledgerflow-test",
    # Fast group joins and failover (see ARCHITECTURE.md "Timings").
    "LEDGERFLOW_KAFKA_SESSION_TIMEOUT_MS": "3000",
    "LEDGERFLOW_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "LEDGERFLOW_CONSUMER_GRACEFUL_TIMEOUT_S": "10",
    # Tests publish their own price ticks, so prices are known exactly: no random feed.
    "LEDGERFLOW_PRICE_FEED": "off",
    # The suite sends far more than a person would from one address; `strict_api` tests the limits.
    "LEDGERFLOW_RATE_LIMIT_PER_USER": "1000000",
    "LEDGERFLOW_RATE_LIMIT_PER_IP": "1000000",
    "LEDGERFLOW_AUTH_RATE_LIMIT_PER_IP": "1000000",
    "LEDGERFLOW_AUTH_RATE_LIMIT_PER_USERNAME": "1000000",
    "LEDGERFLOW_RATE_LIMIT_READS_PER_USER": "1000000",
    "LEDGERFLOW_RATE_LIMIT_ANONYMOUS_PER_IP": "1000000",
}
STRICT_API_ENV = {
    "LEDGERFLOW_RATE_LIMIT_READS_PER_USER": "100",
    "LEDGERFLOW_RATE_LIMIT_ANONYMOUS_PER_IP": "50",
    "LEDGERFLOW_RATE_LIMIT_PER_USER": "5",
    "LEDGERFLOW_RATE_LIMIT_WINDOW_S": "30",
    "LEDGERFLOW_AUTH_RATE_LIMIT_PER_USERNAME": "3",
    "LEDGERFLOW_CORS_ALLOW_ORIGINS": '["https://app.ledgerflow.example"]',
}


# The price feed's ticks would make fill prices unpredictable (it is also switched off above).
NOT_STARTED_IN_TESTS = frozenset({"price-feed"})


def _docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceEndpoints]:
    if _docker_engine_available():
        from tests.support.containers import container_services

        with container_services() as endpoints:
            yield endpoints
        return
    log_dir = tmp_path_factory.mktemp("server-logs")
    local = LocalServices.beside(log_dir)
    with local:
        yield local.endpoints


@pytest.fixture(scope="session")
def env(services: ServiceEndpoints) -> dict[str, str]:
    merged = {**TEST_ENV, **services.as_env()}
    os.environ.update(merged)
    return merged


@pytest.fixture(scope="session")
def settings(env: dict[str, str]) -> Settings:
    return Settings()


@dataclass
class RunningSystem:
    supervisor: Supervisor
    api_url: str
    log_path: Path
    # Each app's Prometheus endpoint, by process name.
    metrics_urls: dict[str, str]

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def system(
    env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    asyncio.run(provision(settings))
    api_port = free_port()
    log_path = tmp_path_factory.mktemp("app-logs") / "apps.log"
    with log_path.open("w", buffering=1) as out:
        supervisor = Supervisor({**os.environ, **env}, out=out)
        processes = app_processes(api_port, metrics_ports=free_metrics_ports())
        for process in processes:
            if process.name not in NOT_STARTED_IN_TESTS:
                supervisor.start(process)
        metrics_urls = {p.name: p.metrics_url for p in processes if p.metrics_url is not None}
        running = RunningSystem(supervisor, f"http://127.0.0.1:{api_port}", log_path, metrics_urls)
        try:
            _wait_until_ready(running)
            yield running
        finally:
            supervisor.stop_all(grace_s=10)


def _wait_until_ready(running: RunningSystem, timeout_s: float = 90) -> None:
    """The API answers ready, and a canary deposit settles: every consumer group has its partitions."""

    async def canary() -> None:
        async with httpx.AsyncClient(base_url=running.api_url, timeout=10) as client:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    if (await client.get("/v1/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"API not ready; logs:\n{running.logs()[-5000:]}")
                await asyncio.sleep(0.2)
            user = await register(client)
            await user.wait_for(await user.deposit("1"), timeout_s=timeout_s)

    asyncio.run(canary())


def start_api_beside(system: RunningSystem, name: str, settings: dict[str, str]) -> str:
    """Another API process on the system's servers, with `settings` layered over the suite's; its URL
    once it answers ready. It stops with the system."""
    port = free_port()
    process = next(p for p in app_processes(port) if p.name == "api")
    overrides = [f"{k}={v}" for k, v in settings.items()]
    system.supervisor.start(AppProcess(name, ["env", *overrides, *process.argv]))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/v1/health/ready", timeout=5).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not become ready; logs:\n{system.logs()[-5000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def strict_api(system: RunningSystem, env: dict[str, str]) -> Iterator[str]:
    """A second API process on the same servers, with production-like rate limits and a CORS allowlist."""
    yield start_api_beside(system, "strict-api", STRICT_API_ENV)


@pytest.fixture
async def http(system: RunningSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as client:
        yield client


@pytest.fixture
async def user(http: httpx.AsyncClient) -> ApiUser:
    return await register(http)
