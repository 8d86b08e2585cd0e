"""`make run` keeps its data, comes back after a server dies, and lets an operator stop one consumer.

Runs `python -m infra.local.run` itself (free ports, a temporary data directory), as an operator would,
and drives it over HTTP and through the `ledgerflow` CLI.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.local.control import ControlFolder, pid_alive
from infra.local.install import PROJECT_ROOT
from infra.local.services import free_port
from schemas.topics import DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS
from tests.support.api import PASSWORD, ApiUser, register
from tests.support.cli import cli

pytestmark = pytest.mark.integration

RUN_ENV = {
    "LEDGERFLOW_ENVIRONMENT": "test",
    "LEDGERFLOW_BCRYPT_ROUNDS": "4",
    "LEDGERFLOW_LOG_JSON": "true",
    "LEDGERFLOW_KAFKA_SESSION_TIMEOUT_MS": "3000",
    "LEDGERFLOW_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "LEDGERFLOW_CONSUMER_GRACEFUL_TIMEOUT_S": "5",
    "LEDGERFLOW_PRICE_FEED": "off",
}


@dataclass
class LocalRun:
    """One `make run` on its own ports and data directory; start and stop it as often as needed."""

    env: dict[str, str]
    data_dir: Path
    log_path: Path
    api_url: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def control(self) -> ControlFolder:
        return ControlFolder(self.data_dir / "run")

    def start(self, timeout_s: float = 90) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "infra.local.run"],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait(lambda: self._ready(), timeout_s, lambda: f"make run not ready; log:\n{self.logs()[-4000:]}")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"make run exited {self.process.returncode}:\n{self.logs()[-4000:]}")
        try:
            return httpx.get(f"{self.api_url}/v1/health/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, timeout_s: float = 60) -> None:
        """Ctrl-C, as at the terminal."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError(f"make run did not stop on Ctrl-C:\n{self.logs()[-3000:]}") from None
        assert self.process.returncode == 0, self.logs()[-3000:]
        self.process = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill_server(self, name: str) -> int:
        pid = self.control.pid(name)
        assert pid is not None and pid_alive(pid), f"{name} is not running"
        os.kill(pid, signal.SIGKILL)
        return pid


def _wait(condition: Callable[[], bool], timeout_s: float, message: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.1)


@pytest.fixture
def local_run(tmp_path: Path) -> Iterator[LocalRun]:
    ports = {name: free_port() for name in ("KAFKA", "DYNAMODB", "REDIS", "OBJECTSTORE", "API")}
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        **RUN_ENV,
        **{f"LEDGERFLOW_LOCAL_{name}_PORT": str(port) for name, port in ports.items() if name != "API"},
        "LEDGERFLOW_LOCAL_DATA_DIR": str(data_dir),
        "LEDGERFLOW_API_PORT": str(ports["API"]),
        # For the CLI: the runner sets these for its own children.
        "LEDGERFLOW_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['KAFKA']}",
        "LEDGERFLOW_DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{ports['DYNAMODB']}",
        "LEDGERFLOW_REDIS_URL": f"redis://127.0.0.1:{ports['REDIS']}/0",
    }
    run = LocalRun(env, data_dir, tmp_path / "run.log", f"http://127.0.0.1:{ports['API']}")
    try:
        yield run
    finally:
        if run.process is not None and run.process.poll() is None:
            run.process.send_signal(signal.SIGINT)
            try:
                run.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(run.process.pid, signal.SIGKILL)


@pytest.fixture
async def http(local_run: LocalRun) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=local_run.api_url, timeout=10) as client:
        yield client


async def _login(client: httpx.AsyncClient, user: ApiUser) -> ApiUser:
    response = await client.post("/v1/auth/login", json={"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return ApiUser(client, user.username, user.account_id, response.json()["access_token"])


async def _status(user: ApiUser, command_id: str) -> str:
    response = await user.get(f"/v1/commands/{command_id}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


@pytest.mark.timeout(240)
async def test_make_run_keeps_its_data_and_an_operator_can_stop_a_consumer(
    local_run: LocalRun, http: httpx.AsyncClient
) -> None:
    env = local_run.env
    await asyncio.to_thread(local_run.start)
    user = await register(http)
    settled = await user.wait_for(await user.deposit("100.00"))
    assert settled["status"] == "settled"

    # An operator stops the ledger consumer: it stays down, and a deposit waits for it.
    stopped = await cli("local", "stop", "ledger", env=env)
    assert stopped.exit_code == 0, stopped.stderr
    waiting = await user.deposit("5.00")
    began = time.monotonic()
    while time.monotonic() - began < 3.5:
        assert local_run.control.pid("ledger") is None and local_run.control.is_stopped("ledger")
        await asyncio.sleep(0.25)
    assert await _status(user, waiting) == "accepted"
    status = await cli("local", "status", env=env)
    assert status.exit_code == 0 and "stopped" in status.stdout, status.stdout + status.stderr

    # With the group's consumers down, a replay from the beginning is allowed, and harmless.
    replay = await cli(
        "replay",
        "ledger",
        "-t",
        DEPOSIT_COMMANDS,
        "-t",
        WITHDRAWAL_COMMANDS,
        "--to-earliest",
        "--execute",
        env=env,
    )
    assert replay.exit_code == 0, replay.stdout + replay.stderr
    started = await cli("local", "start", "ledger", env=env)
    assert started.exit_code == 0, started.stderr
    # One partition per account: the waiting deposit settles after the replayed one was handled again.
    assert (await user.wait_for(waiting))["status"] == "settled"
    assert await user.balance() == "105.00"

    # The servers die: the runner brings them back on their ports, with their data.
    for server in ("dynamodb", "tansu"):
        killed = local_run.kill_server(server)
        _wait(
            lambda s=server, k=killed: (
                (p := local_run.control.pid(s)) is not None and p != k and pid_alive(p)
            ),
            60,
            lambda s=server: f"{s} was not restarted; log:\n{local_run.logs()[-3000:]}",
        )
    assert await user.balance() == "105.00"
    assert (await user.settle("/v1/deposits", "7.00"))["status"] == "settled"

    # `make run` stopped and started again on the same data: the same user, the same money.
    await asyncio.to_thread(local_run.stop)
    await asyncio.to_thread(local_run.start)
    again = await _login(http, user)
    assert await again.balance() == "112.00"
    assert (await again.settle("/v1/deposits", "1.00"))["status"] == "settled"
    assert await again.balance() == "113.00"
    history = (await again.get("/v1/balance/transactions")).json()
    settled_amounts = sorted(
        item.get("amount") for item in history["items"] if item.get("status") != "rejected"
    )
    assert settled_amounts == ["1.00", "100.00", "5.00", "7.00"], history
    await asyncio.to_thread(local_run.stop)
