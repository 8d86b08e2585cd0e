"""What `GET /metrics` answers: the whole API's metrics, whichever worker process is asked.

One process (`PROMETHEUS_MULTIPROC_DIR` unset): prometheus_client's default registry, as always.
Several uvicorn workers: the process launcher (`infra/local/processes.py`) gives each launch a new, empty
directory in `PROMETHEUS_MULTIPROC_DIR` before the workers start; each worker then keeps its values in
files there, and a scrape merges every file (`MultiProcessCollector`), those of workers that have since
exited included, so counters never go back. In that mode a Gauge needs a `multiprocess_mode`, and the
process and platform collectors (CPU, memory) are not reported. The API's gauges (open streams, waiting
long polls: api/live/hub.py) are `livesum`.

Besides every request's count and latency (api/middleware.py), the intake's outcomes: each command POST
by kind, outcome (accepted, rejected, rate_limited, unavailable, error) and reason (the HTTP status's
name, e.g. `unprocessable_content`, `conflict`, `content_too_large`).
"""

from __future__ import annotations

import os
from http import HTTPStatus
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter, generate_latest, multiprocess

from infra.local.control import pid_alive

MULTIPROC_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# The command routes (POST), by the kind of command they accept.
INTAKE_KINDS: Final = {"/v1/deposits": "deposit", "/v1/withdrawals": "withdrawal", "/v1/orders": "order"}
INTAKE: Final = Counter(
    "ledgerflow_intake_commands_total",
    "Command POSTs by kind, outcome (accepted, rejected, rate_limited, unavailable, error) and reason",
    ["kind", "outcome", "reason"],
)
_OUTCOMES: Final = {202: "accepted", 429: "rate_limited", 503: "unavailable"}


def count_intake(method: str, path: str, status: int) -> None:
    """Counts a command POST's answer; any other request is not the intake's."""
    kind = INTAKE_KINDS.get(path)
    if kind is None or method != "POST":
        return
    outcome = _OUTCOMES.get(status) or ("rejected" if 400 <= status < 500 else "error")
    reason = "" if status == 202 else _status_name(status)
    INTAKE.labels(kind, outcome, reason).inc()


def _status_name(status: int) -> str:
    try:
        return HTTPStatus(status).name.lower()
    except ValueError:
        return str(status)


def multiprocess_dir() -> str | None:
    """The directory the workers share their values in, or None for a single process."""
    return os.environ.get(MULTIPROC_DIR_ENV) or None


def latest() -> bytes:
    """The exposition text: every worker's values summed in multiprocess mode, else this process's."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest()
    forget_exited_workers(path)
    registry = CollectorRegistry()  # a new one per scrape, as prometheus_client's docs do
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def forget_exited_workers(path: str) -> None:
    """`mark_process_dead` for each exited process that left live-gauge files (`gauge_live*_<pid>.db`).

    The docs call it from gunicorn's `child_exit` hook; uvicorn's supervisor has no such hook, so the
    scrape does it. Counter and histogram files stay: a worker's requests count after it exits.
    """
    pids = {entry.stem.rpartition("_")[2] for entry in Path(path).glob("gauge_live*_*.db")}
    for pid in pids:
        if pid.isdigit() and not pid_alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)  # type: ignore[no-untyped-call]
