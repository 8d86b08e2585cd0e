"""The application processes (API and consumers) and a small supervisor for them.

Every child runs in its own session, so a Ctrl-C at the terminal reaches only the runner, which then
stops the apps before the servers; on Linux each child also gets SIGKILL if the runner dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TextIO

from consumers.registry import APPS
from infra.local.control import pid_alive
from infra.local.install import PROJECT_ROOT
from infra.settings import Settings

API_FACTORY: Final = "api.app:create_app"
# Where the API's workers share their metrics (api/metrics.py): one new directory per launch.
METRICS_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR_PREFIX: Final = "ledgerflow-api-metrics-"

_PR_SET_PDEATHSIG: Final = 1
_COLOURS: Final = ("36", "33", "35", "32", "34", "91", "96", "93", "95", "92")
_PREFIX_WIDTH: Final = 10


@dataclass(frozen=True)
class AppProcess:
    name: str
    argv: list[str]
    # Layered over the supervisor's environment for this process only.
    env: Mapping[str, str] = field(default_factory=dict)
    metrics_url: str | None = None


@dataclass(frozen=True)
class ExitedProcess:
    name: str
    returncode: int
    runtime_s: float


def app_processes(
    settings_port: int, api_workers: int | None = None, metrics_ports: Mapping[str, int] | None = None
) -> list[AppProcess]:
    """The API on `settings_port` and every app of the registry (consumers/registry.py), run with this
    interpreter, each serving its metrics on `metrics_ports[name]` (default: its registry entry's port).

    The API runs `api_workers` processes (default: `LEDGERFLOW_API_WORKERS` from this environment) and
    writes no access-log line per request: the metrics count requests, the audit trail records who did
    what, and a line per request would be most of the log's volume (and a share of the CPU) under load.
    More than one worker runs under `serve_api` (`python -m infra.local.processes`), so that `/metrics`
    counts the requests of them all.
    """
    settings = Settings()
    workers = api_workers if api_workers is not None else settings.api_workers
    runner = ["-m", "infra.local.processes"] if workers > 1 else ["-m", "uvicorn"]
    uvicorn = [API_FACTORY, "--factory", "--no-access-log", "--workers", str(workers)]
    # Open streams end at once on SIGTERM (sse-starlette); a long poll gets this long, then is cancelled.
    uvicorn += ["--timeout-graceful-shutdown", str(settings.api_graceful_shutdown_s)]
    uvicorn += ["--host", "127.0.0.1", "--port", str(settings_port)]
    api = AppProcess(
        "api", [sys.executable, *runner, *uvicorn], metrics_url=f"http://127.0.0.1:{settings_port}/metrics"
    )
    ports = {name: spec.metrics_port for name, spec in APPS.items()} | dict(metrics_ports or {})
    apps = [
        AppProcess(
            name,
            [sys.executable, "-m", "faststream", "run", spec.app],
            env={"LEDGERFLOW_METRICS_PORT": str(ports[name])},
            metrics_url=f"http://127.0.0.1:{ports[name]}/metrics" if ports[name] else None,
        )
        for name, spec in APPS.items()
    ]
    return [api, *apps]


def serve_api(uvicorn_args: Sequence[str]) -> None:
    """Run uvicorn in this process with its workers sharing their metrics through a new directory.

    prometheus_client's multiprocess mode wants `PROMETHEUS_MULTIPROC_DIR` empty before the workers
    start, so every launch (a restart included) gets a directory of its own, removed when uvicorn
    returns. uvicorn's workers are spawned, so they inherit the variable set here.
    """
    import uvicorn  # the runner itself never needs it

    with fresh_metrics_dir() as path:
        os.environ[METRICS_DIR_ENV] = str(path)
        uvicorn.main.main(args=list(uvicorn_args), prog_name="uvicorn")


@contextlib.contextmanager
def fresh_metrics_dir(parent: Path | None = None) -> Iterator[Path]:
    """A new, empty directory named after this process, deleted on exit; first, the ones left behind by
    launchers that were killed (SIGKILL skips the clean-up) are deleted."""
    parent = parent if parent is not None else Path(tempfile.gettempdir())
    for stale in parent.glob(f"{METRICS_DIR_PREFIX}*"):
        owner = stale.name.removeprefix(METRICS_DIR_PREFIX).partition("-")[0]
        if owner.isdigit() and not pid_alive(int(owner)):
            shutil.rmtree(stale, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _load_prctl() -> Callable[..., Any] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Resolved once in the parent: the forked child must not do library look-ups before exec.
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL: Final = _load_prctl()

# PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process. Forking from
# this never-ending thread means a child started from a short-lived thread does not die with it.
_SPAWNER: Final = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledgerflow-spawner")


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    prctl = _PRCTL
    if prctl is None:
        return None

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl; then no signal would ever come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return setup


def spawn(
    argv: Sequence[str],
    *,
    stdout: int | IO[Any],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own session that gets SIGKILL when this process dies (Linux)."""

    def popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )

    return _SPAWNER.submit(popen).result()


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the child's whole process group (it leads one), so its own children go too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def terminate(procs: Iterable[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM every live child, wait up to `grace_s` for them together, then SIGKILL what is left."""
    alive = [proc for proc in procs if proc.poll() is None]
    for proc in alive:
        signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in alive:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            signal_group(proc, signal.SIGKILL)
    for proc in alive:
        proc.wait()
        # A leader that exited cleanly may leave grandchildren behind in its group.
        signal_group(proc, signal.SIGKILL)


@dataclass
class _Child:
    spec: AppProcess
    popen: subprocess.Popen[bytes]
    started_at: float
    pump: threading.Thread
    reported: bool = field(default=False)


class Supervisor:
    """Starts app processes with a given env, prefixes their output lines with the name (colour when a
    TTY), stops them (SIGTERM then SIGKILL after a grace period)."""

    def __init__(
        self, env: Mapping[str, str], *, out: TextIO | None = None, cwd: Path = PROJECT_ROOT
    ) -> None:
        # Unbuffered children: their lines show up when written, not when a buffer fills.
        self._env = {**env, "PYTHONUNBUFFERED": "1"}
        self._out = out if out is not None else sys.stdout
        self._cwd = cwd
        self._colour = self._out.isatty()
        self._children: dict[str, _Child] = {}
        self._colours: dict[str, str] = {}
        self._out_lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._children)

    def pid(self, name: str) -> int | None:
        child = self._children.get(name)
        return child.popen.pid if child is not None and child.popen.poll() is None else None

    def start(self, proc: AppProcess) -> subprocess.Popen[bytes]:
        current = self._children.get(proc.name)
        if current is not None and current.popen.poll() is None:
            raise RuntimeError(f"{proc.name} is already running (pid {current.popen.pid})")
        popen = spawn(proc.argv, stdout=subprocess.PIPE, env={**self._env, **proc.env}, cwd=self._cwd)
        pump = threading.Thread(
            target=self._pump, args=(self._prefix(proc.name), popen), name=f"out-{proc.name}", daemon=True
        )
        pump.start()
        self._children[proc.name] = _Child(proc, popen, time.monotonic(), pump)
        return popen

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        signal_group(self._children[name].popen, sig)

    def stop(self, name: str, grace_s: float = 10) -> AppProcess:
        """Stops one app; returns how it was started, to start it again exactly so (ports included)."""
        child = self._children.pop(name)
        terminate([child.popen], grace_s)
        child.pump.join(timeout=2)
        return child.spec

    def restart(self, name: str, grace_s: float = 10) -> None:
        spec = self._children[name].spec
        self.stop(name, grace_s)
        self.start(spec)

    def stop_all(self, grace_s: float = 10) -> None:
        children = list(self._children.values())
        self._children.clear()
        terminate([child.popen for child in children], grace_s)
        for child in children:
            child.pump.join(timeout=2)

    def exited(self) -> list[ExitedProcess]:
        """Children that ended since the last call (each reported once), stopped ones excluded."""
        found = []
        for name, child in self._children.items():
            returncode = child.popen.poll()
            if returncode is not None and not child.reported:
                child.reported = True
                found.append(ExitedProcess(name, returncode, time.monotonic() - child.started_at))
        return found

    def wait_any_exit(self, timeout_s: float) -> list[ExitedProcess]:
        """Block until a child ends or `timeout_s` passes; what `exited()` returns then."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.exited()
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            time.sleep(min(0.1, remaining))

    def _prefix(self, name: str) -> str:
        label = f"{name:<{_PREFIX_WIDTH}}|"
        if not self._colour:
            return f"{label} "
        colour = self._colours.setdefault(name, _COLOURS[len(self._colours) % len(_COLOURS)])
        return f"\x1b[{colour}m{label}\x1b[0m "

    def _pump(self, prefix: str, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        writable = True
        for raw in iter(popen.stdout.readline, b""):
            if writable:
                writable = self._write(prefix + raw.decode(errors="replace").rstrip("\r\n"))
            # Keep draining even when our output is gone, or the child would block on a full pipe.
        popen.stdout.close()

    def _write(self, line: str) -> bool:
        with self._out_lock:
            try:
                self._out.write(line + "\n")
                self._out.flush()
            except (OSError, ValueError):
                return False
        return True


if __name__ == "__main__":
    serve_api(sys.argv[1:])
