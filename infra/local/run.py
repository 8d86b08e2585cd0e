"""`make run`: the whole system in the foreground, without Docker.

Starts Tansu (with its object store), DynamoDB Local and Redis, provisions topics and the table, then
the API and every consumer. Data lives in the data directory (`.data/` by default; see
infra/local/config.py for the `LEDGERFLOW_LOCAL_*` overrides), so a restart of any server, or of
`make run` itself, keeps every user, balance and message. A crashed child is restarted after a short
backoff; an app stopped on purpose (`ledgerflow local stop NAME`, or any SIGTERM) stays down until
`ledgerflow local start NAME`. Ctrl-C or SIGTERM stops the apps first, then the servers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Final

import structlog

from infra.local.config import LocalConfig, LocalConfigError
from infra.local.control import ControlFolder, RunnerInfo
from infra.local.install import PROJECT_ROOT, InstallError
from infra.local.processes import AppProcess, ExitedProcess, Supervisor, app_processes
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

API_READY_TIMEOUT_S: Final = 60.0
APP_STOP_GRACE_S: Final = 10.0
RESTART_BASE_DELAY_S: Final = 1.0
RESTART_MAX_DELAY_S: Final = 30.0
# A child that ran this long before crashing starts its backoff over.
STABLE_AFTER_S: Final = 30.0
WATCH_INTERVAL_S: Final = 0.5
# Exit statuses of an app that was asked to stop: killed by SIGTERM, or a clean exit after it (FastStream
# and uvicorn catch SIGTERM, finish in-flight work and exit 0).
_DELIBERATE_RETURNCODES: Final = frozenset({0, -signal.SIGTERM})


class RunnerBusyError(RuntimeError):
    """Another `make run` uses this data directory."""


def restart_delay(failures: int) -> float:
    """1, 2, 4, ... seconds for consecutive quick failures, capped."""
    return min(RESTART_MAX_DELAY_S, RESTART_BASE_DELAY_S * 2.0 ** max(0, failures - 1))


def stopped_on_purpose(returncode: int, *, marked: bool) -> bool:
    """An exit the runner must not undo: an operator's stop marker, or an exit after SIGTERM."""
    return marked or returncode in _DELIBERATE_RETURNCODES


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
    try:
        config = LocalConfig.from_env()
    except LocalConfigError as error:
        print(f"make run: {error}", file=sys.stderr)  # noqa: T201
        return 2
    services = LocalServices(
        kafka_port=config.kafka_port,
        dynamodb_port=config.dynamodb_port,
        redis_port=config.redis_port,
        data_dir=config.data_dir if config.durable else None,
        dynamodb_java_opts=config.dynamodb_java_opts,
        objectstore_port=config.objectstore_port,
    )
    control = ControlFolder(config.control_dir)
    supervisor: Supervisor | None = None
    try:
        if not control.claim():
            raise RunnerBusyError(
                f"another `make run` is using {config.data_dir} (see `ledgerflow local status`)"
            )
        if port_in_use(settings.api_port):
            raise PortInUseError(
                f"port {settings.api_port} for the API is already in use (another `make run`?)"
            )
        endpoints = services.start()
        os.environ.update(endpoints.as_env())
        settings = Settings()
        _provision(settings)
        supervisor = Supervisor(child_env(endpoints, tty=sys.stdout.isatty()))
        apps = app_processes(settings.api_port)
        control.begin(
            RunnerInfo(
                pid=os.getpid(),
                apps=tuple(app.name for app in apps),
                servers=tuple(services.pids()),
                api_url=f"http://{HOST}:{settings.api_port}",
                data_dir=str(config.data_dir),
                durable=config.durable,
            )
        )
        _record_server_pids(control, services)
        for proc in apps:
            control.record_pid(proc.name, supervisor.start(proc).pid)
        api_up = _wait_for_api(supervisor, settings.api_port)
        _announce(
            endpoints, settings.api_port, services, config, time.monotonic() - began, api_up=api_up, apps=apps
        )
        _watch(supervisor, services, settings, control)
    except (InstallError, PortInUseError, ServiceStartError, RunnerBusyError) as error:
        print(f"make run: {error}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        _shutdown(supervisor, services, control)
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
    endpoints: ServiceEndpoints,
    api_port: int,
    services: LocalServices,
    config: LocalConfig,
    seconds: float,
    *,
    api_up: bool,
    apps: Sequence[AppProcess],
) -> None:
    state = "ready" if api_up else "started, but the API is not answering yet (see its output above)"
    logs = os.path.relpath(services.log_dir, PROJECT_ROOT)
    data = _shown(config.data_dir)
    where = (
        f"data in {data}/ (`make reset` wipes it)"
        if config.durable
        else "data in memory only (LEDGERFLOW_LOCAL_STORAGE=memory)"
    )
    if services.reused_redis:
        where += f"; Redis is the one already running on :{config.redis_port}, with its own persistence"
    print(  # noqa: T201
        f"ledgerflow {state} in {seconds:.1f} s: API http://{HOST}:{api_port}  "
        f"Kafka {endpoints.kafka_bootstrap_servers}  DynamoDB {endpoints.dynamodb_endpoint_url}  "
        f"Redis {endpoints.redis_url}\n"
        f"  {where}; server logs in {logs}/; `ledgerflow local status|stop|start`; Ctrl-C stops everything\n"
        f"  metrics: {'  '.join(f'{app.name} {app.metrics_url}' for app in apps if app.metrics_url)}",
        flush=True,
    )


def _shown(path: os.PathLike[str]) -> str:
    relative = os.path.relpath(path, PROJECT_ROOT)
    return str(path) if relative.startswith("..") else relative


def _record_server_pids(control: ControlFolder, services: LocalServices) -> None:
    for name, pid in services.pids().items():
        control.record_pid(name, pid)


def _watch(
    supervisor: Supervisor, services: LocalServices, settings: Settings, control: ControlFolder
) -> None:
    """Forever: restart crashed apps after their backoff, leave stopped ones down until an operator
    starts them, and restart any server that died."""
    restarts = RestartSchedule()
    # Apps seen stopped on purpose: they start again once their stop marker is gone.
    held: set[str] = set()
    while True:
        for exited in supervisor.wait_any_exit(timeout_s=WATCH_INTERVAL_S):
            control.record_pid(exited.name, None)
            if stopped_on_purpose(exited.returncode, marked=control.is_stopped(exited.name)):
                control.mark_stopped(exited.name)  # `ledgerflow local start` brings it back
                held.add(exited.name)
                log.warning("app.stopped", app=exited.name, returncode=exited.returncode)
                continue
            delay = restarts.schedule(exited, time.monotonic())
            log.warning("app.exited", app=exited.name, returncode=exited.returncode, restart_in_s=delay)
        died = services.exited()
        for name in died:
            log.error("server.exited", server=name, note="restarting it on its port, with its data")
            try:
                services.restart(name)
            except ServiceStartError as error:
                log.error("server.restart_failed", server=name, error=str(error), note="retrying")
            control.record_pid(name, services.pids().get(name))
        if died and not services.durable:
            _provision(settings)  # in memory mode the restarted server came back empty
        for name in restarts.due(time.monotonic()):
            if control.is_stopped(name):
                held.add(name)  # stopped by an operator while it waited for its restart
            else:
                log.info("app.restart", app=name)
                _start(supervisor, control, name)
        for name in sorted(held):
            if not control.is_stopped(name):
                held.discard(name)
                log.info("app.start", app=name, reason="its stop marker is gone")
                _start(supervisor, control, name)


def _start(supervisor: Supervisor, control: ControlFolder, name: str) -> None:
    supervisor.restart(name)
    control.record_pid(name, supervisor.pid(name))


def _shutdown(supervisor: Supervisor | None, services: LocalServices, control: ControlFolder) -> None:
    # A second Ctrl-C must not cut the clean-up short and leave servers behind.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        if supervisor is None and not services.started:
            return
        print("stopping ...", file=sys.stderr, flush=True)  # noqa: T201
        if supervisor is not None:
            supervisor.stop_all(APP_STOP_GRACE_S)
        services.stop()
    finally:
        control.end()


if __name__ == "__main__":
    sys.exit(main())
