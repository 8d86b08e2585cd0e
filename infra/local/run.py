"""`make run`: the whole system in the foreground, without Docker.

Starts Tansu, DynamoDB Local and Redis on the contract's default ports, provisions topics and the
table, then the API and every consumer. A crashed child is restarted after a short backoff; Ctrl-C or
SIGTERM stops the apps first, then the servers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from types import FrameType
from typing import Final

import structlog

from infra.local.install import PROJECT_ROOT, InstallError
from infra.local.processes import ExitedProcess, Supervisor, app_processes
from infra.local.services import (
    HOST,
    LocalServices,
    PortInUseError,
    ServiceEndpoints,
    ServiceStartError,
    accepts_connections,
    port_in_use,
)
from infra.logging import configure_logging
from infra.settings import Settings

log = structlog.get_logger(__name__)

KAFKA_PORT: Final = 9092
DYNAMODB_PORT: Final = 8000
REDIS_PORT: Final = 6379
API_READY_TIMEOUT_S: Final = 60.0
APP_STOP_GRACE_S: Final = 10.0
RESTART_BASE_DELAY_S: Final = 1.0
RESTART_MAX_DELAY_S: Final = 30.0
# A child that ran this long before crashing starts its backoff over.
STABLE_AFTER_S: Final = 30.0


def restart_delay(failures: int) -> float:
    """1, 2, 4, ... seconds for consecutive quick failures, capped."""
    return min(RESTART_MAX_DELAY_S, RESTART_BASE_DELAY_S * 2.0 ** max(0, failures - 1))


class RestartSchedule:
    """When each crashed app is due to start again."""

    def __init__(self) -> None:
        self._failures: dict[str, int] = {}
        self._due: dict[str, float] = {}

    def schedule(self, exited: ExitedProcess, now: float) -> float:
        previous = 0 if exited.runtime_s >= STABLE_AFTER_S else self._failures.get(exited.name, 0)
        self._failures[exited.name] = previous + 1
        delay = restart_delay(previous + 1)
        self._due[exited.name] = now + delay
        return delay

    def due(self, now: float) -> list[str]:
        names = [name for name, at in self._due.items() if at <= now]
        for name in names:
            del self._due[name]
        return names


def child_env(endpoints: ServiceEndpoints, *, tty: bool) -> dict[str, str]:
    env = {**os.environ, **endpoints.as_env()}
    if tty:
        # The apps write to our pipe, not the terminal, and would otherwise log JSON.
        env.setdefault("LEDGERFLOW_LOG_JSON", "false")
    return env


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    began = time.monotonic()
    settings = Settings()
    configure_logging(settings, "local-run")
    # Both stop everything, even when started with SIGINT ignored (a background job of a script).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    services = LocalServices(kafka_port=KAFKA_PORT, dynamodb_port=DYNAMODB_PORT, redis_port=REDIS_PORT)
    supervisor: Supervisor | None = None
    try:
        if port_in_use(settings.api_port):
            raise PortInUseError(
                f"port {settings.api_port} for the API is already in use (another `make run`?)"
            )
        endpoints = services.start()
        os.environ.update(endpoints.as_env())
        settings = Settings()
        _provision(settings)
        supervisor = Supervisor(child_env(endpoints, tty=sys.stdout.isatty()))
        for proc in app_processes(settings.api_port):
            supervisor.start(proc)
        api_up = _wait_for_api(supervisor, settings.api_port)
        _announce(endpoints, settings.api_port, services, time.monotonic() - began, api_up=api_up)
        _watch(supervisor, services, settings)
    except (InstallError, PortInUseError, ServiceStartError) as error:
        print(f"make run: {error}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        _shutdown(supervisor, services)
    return 0


def _provision(settings: Settings) -> None:
    # Imported late: it loads the AWS SDK (seconds on a busy machine), and a Ctrl-C meanwhile should
    # stop quietly, with clean-up, not with a traceback from the middle of an import.
    from infra.provision import provision

    asyncio.run(provision(settings))


def _wait_for_api(supervisor: Supervisor, port: int) -> bool:
    deadline = time.monotonic() + API_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if accepts_connections(port):
            return True
        if supervisor.pid("api") is None:
            return False  # it crashed; the watch loop restarts it
        time.sleep(0.1)
    return False


def _announce(
    endpoints: ServiceEndpoints, api_port: int, services: LocalServices, seconds: float, *, api_up: bool
) -> None:
    state = "ready" if api_up else "started, but the API is not answering yet (see its output above)"
    logs = os.path.relpath(services.log_dir, PROJECT_ROOT)
    print(  # noqa: T201
        f"ledgerflow {state} in {seconds:.1f} s: API http://{HOST}:{api_port}  "
        f"Kafka {endpoints.kafka_bootstrap_servers}  DynamoDB {endpoints.dynamodb_endpoint_url}  "
        f"Redis {endpoints.redis_url}  (server logs in {logs}/; Ctrl-C stops everything)",
        flush=True,
    )


def _watch(supervisor: Supervisor, services: LocalServices, settings: Settings) -> None:
    """Forever: restart crashed apps after their backoff, and restart any server that died."""
    restarts = RestartSchedule()
    while True:
        for exited in supervisor.wait_any_exit(timeout_s=0.5):
            delay = restarts.schedule(exited, time.monotonic())
            log.warning("app.exited", app=exited.name, returncode=exited.returncode, restart_in_s=delay)
        for name in services.exited():
            log.error("server.exited", server=name, note="its in-memory data is lost; restarting it")
            services.restart(name)
            _provision(settings)
        for name in restarts.due(time.monotonic()):
            log.info("app.restart", app=name)
            supervisor.restart(name)


def _shutdown(supervisor: Supervisor | None, services: LocalServices) -> None:
    # A second Ctrl-C must not cut the clean-up short and leave servers behind.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    if supervisor is None and not services.started:
        return
    print("stopping ...", file=sys.stderr, flush=True)  # noqa: T201
    if supervisor is not None:
        supervisor.stop_all(APP_STOP_GRACE_S)
    services.stop()


if __name__ == "__main__":
    sys.exit(main())
