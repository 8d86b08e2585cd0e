"""`ledgerflow local`: see, stop and start the apps of a running `make run`; wipe its data.

It talks to `make run` only through the control folder (infra/local/control.py) of the data directory
`LEDGERFLOW_LOCAL_DATA_DIR` (default `.data/`), so it needs no server to be up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.table import Table

from infra.cli.errors import CliError
from infra.local.config import CONTROL_SUBDIR, LocalConfig, LocalConfigError
from infra.local.control import ControlFolder, RunnerInfo, pid_alive

# What `make reset` may delete: the servers' folders, the control folder, and nothing it did not make.
_DATA_ENTRIES: Final = frozenset({"kafka", "dynamodb", "redis", CONTROL_SUBDIR})
_KILL_WAIT_S: Final = 5.0
out = Console(highlight=False)

local_app = typer.Typer(
    help="The local runtime of `make run`: status, stop and start one app, reset its data.",
    no_args_is_help=True,
)


def _config() -> LocalConfig:
    try:
        return LocalConfig.from_env()
    except LocalConfigError as exc:
        raise CliError(str(exc), 2) from exc


def _running(control: ControlFolder, config: LocalConfig) -> RunnerInfo:
    info = control.runner()
    if info is None:
        raise CliError(f"`make run` is not running on {config.data_dir} (LEDGERFLOW_LOCAL_DATA_DIR)")
    return info


def _app(info: RunnerInfo, name: str) -> str:
    if name not in info.apps:
        raise CliError(f"no app named {name!r}; the apps are: {', '.join(info.apps)}", 2)
    return name


@local_app.command("status")
def status_command() -> None:
    """Every app and server of the running `make run`: pid and state."""
    config = _config()
    control = ControlFolder(config.control_dir)
    info = _running(control, config)
    table = Table(title=f"make run (pid {info.pid}), data in {info.data_dir if info.durable else 'memory'}")
    for column in ("name", "kind", "pid", "state"):
        table.add_column(column)
    for kind, names in (("app", info.apps), ("server", info.servers)):
        for name in names:
            pid = control.pid(name)
            alive = pid is not None and pid_alive(pid)
            if alive:
                state = "running"
            elif kind == "app" and control.is_stopped(name):
                state = "stopped (ledgerflow local start " + name + ")"
            else:
                state = "down (being restarted)"
            table.add_row(name, kind, str(pid) if alive else "-", state)
    out.print(table)


@local_app.command("stop")
def stop_command(
    name: Annotated[str, typer.Argument(help="The app, e.g. ledger (see `ledgerflow local status`).")],
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for a graceful stop before SIGKILL.")
    ] = 30.0,
) -> None:
    """Stop one app gracefully (SIGTERM: it finishes its in-flight work); it stays down until `start`."""
    config = _config()
    control = ControlFolder(config.control_dir)
    _app(_running(control, config), name)
    # The marker first: from now on the runner treats any exit of this app as intended.
    control.mark_stopped(name)
    pid = control.pid(name)
    if pid is None or not pid_alive(pid):
        out.print(f"{name} is already stopped.")
        return
    began = time.monotonic()
    _signal_group(pid, signal.SIGTERM)
    if not _wait_gone(control, name, pid, timeout_s):
        _signal_group(pid, signal.SIGKILL)
        if not _wait_gone(control, name, pid, _KILL_WAIT_S):
            raise CliError(f"{name} (pid {pid}) did not stop")
        out.print(f"{name} did not stop within {timeout_s:g} s and was killed.")
    out.print(
        f"{name} stopped (pid {pid}, {time.monotonic() - began:.1f} s); "
        f"`ledgerflow local start {name}` starts it again."
    )


@local_app.command("start")
def start_command(
    name: Annotated[str, typer.Argument(help="An app stopped with `ledgerflow local stop`.")],
    timeout_s: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for it.")] = 15.0,
) -> None:
    """Start an app again that was stopped on purpose; the running `make run` launches it."""
    config = _config()
    control = ControlFolder(config.control_dir)
    _app(_running(control, config), name)
    pid = control.pid(name)
    if not control.is_stopped(name) and pid is not None and pid_alive(pid):
        out.print(f"{name} is already running (pid {pid}).")
        return
    control.clear_stopped(name)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = control.pid(name)
        if pid is not None and pid_alive(pid):
            out.print(f"{name} started (pid {pid}).")
            return
        time.sleep(0.1)
    raise CliError(f"{name} was not started within {timeout_s:g} s: is `make run` still watching?")


@local_app.command("reset")
def reset_command(
    yes: Annotated[bool, typer.Option("--yes", help="Do it (no question asked).")] = False,
) -> None:
    """Delete every user, balance and message of the local runtime (refused while `make run` runs)."""
    config = _config()
    data_dir = config.data_dir
    if ControlFolder(config.control_dir).runner_active():
        raise CliError(f"`make run` is running on {data_dir}: stop it (Ctrl-C) first")
    if not data_dir.exists():
        out.print(f"Nothing to reset: {data_dir} does not exist.")
        return
    unknown = sorted(entry.name for entry in data_dir.iterdir() if entry.name not in _DATA_ENTRIES)
    if unknown:
        raise CliError(
            f"{data_dir} holds files `make run` did not make ({', '.join(unknown)}): not deleting it"
        )
    if not yes and not typer.confirm(f"Delete everything in {data_dir}?"):
        raise CliError("nothing deleted", 1)
    shutil.rmtree(data_dir)
    out.print(f"Deleted {data_dir}: the next `make run` starts empty.")


def _signal_group(pid: int, sig: int) -> None:
    # Each app leads its own process group (see infra/local/processes.py): its children go with it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _wait_gone(control: ControlFolder, name: str, pid: int, timeout_s: float) -> bool:
    """Until the runner has seen the exit (it removes the pid file), or the process is gone."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if control.pid(name) != pid or not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False
