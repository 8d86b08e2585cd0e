"""A whole system of its own (servers, API, consumers) for tests that kill its parts.

The session's shared system must stay healthy for every other test; fault tests build one of these,
kill and restart what they like, and throw it away.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from infra.local.processes import Supervisor, app_processes
from infra.local.services import LocalServices, free_metrics_ports, free_port
from infra.provision import provision
from infra.settings import Settings

DEFAULT_APPS = ("api", "ledger")


@dataclass
class IsolatedSystem:
    services: LocalServices
    supervisor: Supervisor
    api_url: str
    env: dict[str, str]
    log_path: Path

    @property
    def settings(self) -> Settings:
        return Settings(**_settings_kwargs(self.env))

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def restart_app(self, name: str, *, kill: bool = True) -> None:
        """SIGKILL (or SIGTERM) one app and start it again."""
        if kill:
            self.supervisor.kill(name)
        self.supervisor.restart(name, grace_s=10)

    def kill_server(self, name: str) -> None:
        """SIGKILL one of the servers (tansu, dynamodb, redis); `services.restart(name)` brings it back."""
        popen = self.services._servers[name].popen
        assert popen is not None
        popen.kill()
        popen.wait(10)

    def wait_for_api(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{self.api_url}/v1/health/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"API not ready; logs:\n{self.logs()[-5000:]}")
            time.sleep(0.2)


def _settings_kwargs(env: Mapping[str, str]) -> dict[str, Any]:
    prefix = "LEDGERFLOW_"
    return {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}


@contextmanager
def isolated_system(
    tmp: Path,
    base_env: Mapping[str, str],
    *,
    apps: tuple[str, ...] = DEFAULT_APPS,
    extra_env: Mapping[str, str] | None = None,
    data_dir: Path | None = None,
) -> Iterator[IsolatedSystem]:
    """Servers on free ports (durable under `data_dir` if given), provisioned, with `apps` running."""
    services = LocalServices.beside(tmp / "server-logs", data_dir=data_dir)
    with services:
        env = {
            **os.environ,
            **base_env,
            **services.endpoints.as_env(),
            "LEDGERFLOW_DYNAMODB_TABLE": "ledgerflow-isolated",
            **(extra_env or {}),
        }
        asyncio.run(provision(Settings(**_settings_kwargs(env))))
        api_port = free_port()
        log_path = tmp / "apps.log"
        with log_path.open("w", buffering=1) as out:
            supervisor = Supervisor(env, out=out)
            for process in app_processes(api_port, metrics_ports=free_metrics_ports()):
                if process.name in apps:
                    supervisor.start(process)
            system = IsolatedSystem(services, supervisor, f"http://127.0.0.1:{api_port}", env, log_path)
            try:
                if "api" in apps:
                    system.wait_for_api()
                yield system
            finally:
                supervisor.stop_all(grace_s=10)
