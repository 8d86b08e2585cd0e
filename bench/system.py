"""A whole system of the benchmark's own: servers on free ports (in memory), provisioned, with the API
and the consumers as separate processes, exactly as `make run` starts them. Never a running one."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from consumers.registry import PRICE_RECORDER, SETTLING
from infra.local.config import java_opts
from infra.local.processes import AppProcess, Supervisor, app_processes
from infra.local.services import DYNAMODB_JAVA_OPTS, LocalServices, free_metrics_ports, free_port
from infra.provision import provision
from infra.settings import Settings

BENCH_ENV: Final[Mapping[str, str]] = {
    "LEDGERFLOW_ENVIRONMENT": "test",
    "LEDGERFLOW_BCRYPT_ROUNDS": "4",
    "LEDGERFLOW_LOG_JSON": "true",
    "LEDGERFLOW_LOG_LEVEL": "WARNING",
    "LEDGERFLOW_DYNAMODB_TABLE": "ledgerflow-bench",
    # The benchmark measures throughput, not the abuse guards: no 429s, no daily limits in the way.
    "LEDGERFLOW_RATE_LIMIT_PER_USER": "1000000000",
    "LEDGERFLOW_RATE_LIMIT_PER_IP": "1000000000",
    "LEDGERFLOW_AUTH_RATE_LIMIT_PER_IP": "1000000000",
    "LEDGERFLOW_AUTH_RATE_LIMIT_PER_USERNAME": "1000000000",
    "LEDGERFLOW_RATE_LIMIT_READS_PER_USER": "1000000000",
    "LEDGERFLOW_RATE_LIMIT_ANONYMOUS_PER_IP": "1000000000",
    "LEDGERFLOW_DAILY_DEPOSIT_LIMIT": "1000000000",
    "LEDGERFLOW_DAILY_WITHDRAWAL_LIMIT": "1000000000",
    # Prices come from the benchmark's own ticks (fixed, so every trade's cost is known).
    "LEDGERFLOW_PRICE_FEED": "off",
}
# The consumers that settle; intake-only and settle-only runs start fewer, or later.
SETTLING_APPS: Final = SETTLING
BASE_APPS: Final = ("api", PRICE_RECORDER.name)
SERVERS: Final = ("tansu", "dynamodb", "redis")


def settings_from(env: Mapping[str, str]) -> Settings:
    prefix = "LEDGERFLOW_"
    values: dict[str, Any] = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    return Settings(**values)


@dataclass
class System:
    services: LocalServices
    supervisor: Supervisor
    specs: dict[str, AppProcess]
    api_port: int
    env: dict[str, str]
    stats_dir: Path
    log_dir: Path

    @property
    def bootstrap(self) -> str:
        return self.services.endpoints.kafka_bootstrap_servers

    @property
    def redis_url(self) -> str:
        return self.services.endpoints.redis_url

    def start_apps(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.supervisor.start(self.specs[name])

    def stop_apps(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.supervisor.stop(name, grace_s=10)

    def pids(self) -> dict[str, int]:
        """Every live server and app process by name."""
        found = dict(self.services.pids())
        for name in self.supervisor.names:
            pid = self.supervisor.pid(name)
            if pid is not None:
                found[name] = pid
        return found

    def check_alive(self) -> None:
        exited = self.supervisor.exited()
        if exited or self.services.exited():
            names = [e.name for e in exited] + self.services.exited()
            raise RuntimeError(f"{', '.join(names)} exited; logs in {self.log_dir}")


@contextmanager
def started_system(log_dir: Path, variant_env: Mapping[str, str], apps: tuple[str, ...]) -> Iterator[System]:
    """Servers, provisioning, and `apps` started; the API answering /v1/health/ready."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stats_dir = log_dir / "stats"
    services = LocalServices.beside(
        log_dir,
        # A variant may run DynamoDB Local's JVM with other options (the JIT's share of its CPU).
        dynamodb_java_opts=java_opts(variant_env) or DYNAMODB_JAVA_OPTS,
    )
    with services, (log_dir / "apps.log").open("w", buffering=1) as app_log:
        env = {
            **os.environ,
            **BENCH_ENV,
            **services.endpoints.as_env(),
            **variant_env,
            "LEDGERFLOW_STATS_DIR": str(stats_dir),
        }
        # Provisioning is not measured: it runs here, without the counters.
        asyncio.run(provision(settings_from({**env, "LEDGERFLOW_STATS_DIR": ""})))
        api_port = free_port()
        supervisor = Supervisor(env, out=app_log)
        # The variant's env, not this process's, says how many API workers to run.
        specs = {
            spec.name: spec
            for spec in app_processes(api_port, settings_from(env).api_workers, free_metrics_ports())
        }
        system = System(services, supervisor, specs, api_port, env, stats_dir, log_dir)
        try:
            system.start_apps(apps)
            _wait_ready(system, timeout_s=120)
            yield system
        finally:
            supervisor.stop_all(grace_s=10)


def _wait_ready(system: System, timeout_s: float) -> None:
    url = f"http://127.0.0.1:{system.api_port}/v1/health/ready"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout_s
    while True:
        system.check_alive()
        try:
            with opener.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API was not ready after {timeout_s:.0f} s; logs in {system.log_dir}")
        time.sleep(0.2)
