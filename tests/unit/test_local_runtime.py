"""The pure pieces of the local runtime, and the supervisor on a tiny child; no servers needed."""

from __future__ import annotations

import io
import signal
import socket
import sys
import time
from collections.abc import Callable

import pytest

from consumers.registry import APPS
from infra.local.processes import AppProcess, ExitedProcess, Supervisor, app_processes
from infra.local.run import RestartSchedule, child_env, restart_delay
from infra.local.services import LocalServices, ServiceEndpoints, free_port, port_in_use

ENDPOINTS = ServiceEndpoints("127.0.0.1:19092", "http://127.0.0.1:18000", "redis://127.0.0.1:16379/0")


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    assert not any(port_in_use(port) for port in ports)


def test_port_in_use_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert port_in_use(listener.getsockname()[1])


def test_endpoints_env_points_settings_at_the_servers() -> None:
    assert ENDPOINTS.as_env() == {
        "LEDGERFLOW_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "LEDGERFLOW_DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:18000",
        "LEDGERFLOW_REDIS_URL": "redis://127.0.0.1:16379/0",
    }


def test_local_services_refuses_a_shared_port() -> None:
    with pytest.raises(ValueError, match="different ports"):
        LocalServices(kafka_port=9999, dynamodb_port=9999, redis_port=6379)


def test_child_env_asks_for_console_logs_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGERFLOW_LOG_JSON", raising=False)
    assert child_env(ENDPOINTS, tty=True)["LEDGERFLOW_LOG_JSON"] == "false"
    assert "LEDGERFLOW_LOG_JSON" not in child_env(ENDPOINTS, tty=False)
    monkeypatch.setenv("LEDGERFLOW_LOG_JSON", "true")
    assert child_env(ENDPOINTS, tty=True)["LEDGERFLOW_LOG_JSON"] == "true"


def test_app_processes_run_the_api_and_every_consumer_with_this_python() -> None:
    procs = {proc.name: proc for proc in app_processes(8123)}
    assert set(procs) == {"api", *APPS}
    assert all(proc.argv[0] == sys.executable for proc in procs.values())
    assert procs["api"].argv[-2:] == ["--port", "8123"]


def test_restart_backoff_grows_and_resets_after_a_stable_run() -> None:
    assert [restart_delay(n) for n in (1, 2, 3, 10)] == [1.0, 2.0, 4.0, 30.0]
    schedule = RestartSchedule()
    assert schedule.schedule(ExitedProcess("ledger", 1, runtime_s=0.5), now=100.0) == 1.0
    assert schedule.schedule(ExitedProcess("ledger", 1, runtime_s=0.5), now=100.0) == 2.0
    assert schedule.due(now=101.0) == []
    assert schedule.due(now=102.0) == ["ledger"]
    assert schedule.schedule(ExitedProcess("ledger", 1, runtime_s=600), now=0.0) == 1.0


def test_supervisor_prefixes_output_reports_a_kill_and_restarts() -> None:
    out = io.StringIO()
    supervisor = Supervisor({}, out=out)
    script = "import time; print('hello', flush=True); time.sleep(60)"
    supervisor.start(AppProcess("sleeper", [sys.executable, "-c", script]))
    try:
        _wait_for(lambda: "hello" in out.getvalue())
        assert out.getvalue().startswith("sleeper   | hello")
        first_pid = supervisor.pid("sleeper")
        supervisor.kill("sleeper")
        [exited] = supervisor.wait_any_exit(timeout_s=5)
        assert (exited.name, exited.returncode) == ("sleeper", -signal.SIGKILL)
        assert supervisor.exited() == []  # each exit is reported once
        supervisor.restart("sleeper")
        assert supervisor.pid("sleeper") not in (None, first_pid)
    finally:
        supervisor.stop_all(grace_s=2)
    assert supervisor.names == []


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
