"""`/metrics` in one process and across several (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from api import metrics
from api.middleware import REQUESTS
from infra.local.install import PROJECT_ROOT
from infra.local.processes import METRICS_DIR_PREFIX, app_processes, fresh_metrics_dir
from tests.support.metrics import sample_value

# What a worker does: count two requests and hold a live gauge, then exit.
WORKER = """
from prometheus_client import Gauge
from api.middleware import REQUESTS
from tests.support.metrics import sample_value
REQUESTS.labels("GET", "/probe", "200").inc(2)
Gauge("probe_workers", "live workers", multiprocess_mode="livesum").set(1)
"""


def _exited_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_one_process_answers_from_its_own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_DIR_ENV, raising=False)
    route = f"/probe-{uuid.uuid4().hex}"
    REQUESTS.labels("GET", route, "200").inc()
    assert sample_value(metrics.latest().decode(), "ledgerflow_http_requests_total", route=route) == 1


def test_several_processes_are_summed_and_an_exited_ones_live_gauge_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, metrics.MULTIPROC_DIR_ENV: str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WORKER], env=env, cwd=PROJECT_ROOT, check=True)
    assert len(list(tmp_path.glob("gauge_livesum_*.db"))) == 2

    monkeypatch.setenv(metrics.MULTIPROC_DIR_ENV, str(tmp_path))
    text = metrics.latest().decode()
    assert sample_value(text, "ledgerflow_http_requests_total", route="/probe") == 4
    assert sample_value(text, "probe_workers") == 0  # both workers exited: their live gauges are gone
    assert not list(tmp_path.glob("gauge_livesum_*.db"))
    assert len(list(tmp_path.glob("counter_*.db"))) == 2


def test_each_launch_gets_a_new_empty_directory_and_removes_it(tmp_path: Path) -> None:
    killed = tmp_path / f"{METRICS_DIR_PREFIX}{_exited_pid()}-abc"
    running = tmp_path / f"{METRICS_DIR_PREFIX}{os.getpid()}-def"
    for left in (killed, running):
        left.mkdir()
        (left / "counter_1.db").write_bytes(b"")

    with fresh_metrics_dir(tmp_path) as path:
        assert path.is_dir() and not any(path.iterdir())
        assert path.name.startswith(f"{METRICS_DIR_PREFIX}{os.getpid()}-")
        assert not killed.exists() and running.exists()
        (path / "counter_2.db").write_bytes(b"")
    assert not path.exists()


def test_only_several_workers_run_under_the_metrics_directory_launcher() -> None:
    one = next(p for p in app_processes(8123, api_workers=1) if p.name == "api")
    two = next(p for p in app_processes(8123, api_workers=2) if p.name == "api")
    assert one.argv[1:3] == ["-m", "uvicorn"]
    assert two.argv[1:3] == ["-m", "infra.local.processes"]
    workers = one.argv.index("--workers") + 1
    assert two.argv[3:] == [*one.argv[3:workers], "2", *one.argv[workers + 1 :]]


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (202, "accepted", ""),
        (422, "rejected", "unprocessable_entity"),
        (413, "rejected", "request_entity_too_large"),
        (429, "rate_limited", "too_many_requests"),
        (503, "unavailable", "service_unavailable"),
        (500, "error", "internal_server_error"),
    ],
)
def test_intake_outcomes_are_counted_by_kind_outcome_and_reason(
    status: int, outcome: str, reason: str
) -> None:
    def count() -> float:
        return sample_value(
            metrics.latest().decode(),
            "ledgerflow_intake_commands_total",
            kind="withdrawal",
            outcome=outcome,
            reason=reason,
        )

    before = count()
    metrics.count_intake("POST", "/v1/withdrawals", status)
    metrics.count_intake("GET", "/v1/withdrawals", status)  # not a command
    metrics.count_intake("POST", "/v1/balance", status)  # not the intake
    assert count() == before + 1
