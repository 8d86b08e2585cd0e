"""The control folder `make run` shares with `ledgerflow local`: who runs, and which app is stopped.

Layout of `<data dir>/run/`:
  - `runner.lock`: held (flock) by the running `make run` for its whole life. Whether it is held is the
    one test of "is `make run` running here": it cannot go stale the way a pid file can.
  - `runner.json`: the runner's pid, its apps and servers, the API's URL.
  - `<name>.pid`: the live process of each app and server (removed when the runner sees it exit).
  - `<name>.stopped`: an operator stopped this app; the runner leaves it down until the file is gone.

`ledgerflow local stop NAME` writes the marker, SIGTERMs the app's process group and waits until the
runner has seen it exit; `ledgerflow local start NAME` removes the marker and the runner, which looks
every half second, starts the app again. A fresh `make run` clears the folder: everything starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

_LOCK: Final = "runner.lock"
_INFO: Final = "runner.json"
_PID: Final = ".pid"
_STOPPED: Final = ".stopped"


@dataclass(frozen=True)
class RunnerInfo:
    pid: int
    apps: tuple[str, ...]
    servers: tuple[str, ...]
    api_url: str
    data_dir: str
    durable: bool


class ControlFolder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: IO[str] | None = None

    # --- the runner's side ---------------------------------------------------------------------------

    def claim(self) -> bool:
        """Take the runner lock for this process's life; False if another `make run` holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = (self.path / _LOCK).open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock = handle
        return True

    def begin(self, info: RunnerInfo) -> None:
        """Forget the previous run's pids and stop markers, then say who runs now."""
        for stale in [*self.path.glob(f"*{_PID}"), *self.path.glob(f"*{_STOPPED}")]:
            stale.unlink(missing_ok=True)
        _write_atomic(
            self.path / _INFO,
            json.dumps(
                {
                    "pid": info.pid,
                    "apps": list(info.apps),
                    "servers": list(info.servers),
                    "api_url": info.api_url,
                    "data_dir": info.data_dir,
                    "durable": info.durable,
                }
            ),
        )

    def record_pid(self, name: str, pid: int | None) -> None:
        path = self.path / f"{name}{_PID}"
        if pid is None:
            path.unlink(missing_ok=True)
        else:
            _write_atomic(path, str(pid))

    def end(self) -> None:
        """Clear the folder and release the lock; a no-op unless this process holds the lock."""
        if self._lock is None:
            return
        for stale in [*self.path.glob(f"*{_PID}"), *self.path.glob(f"*{_STOPPED}"), self.path / _INFO]:
            stale.unlink(missing_ok=True)
        self._lock.close()  # closing releases the flock
        self._lock = None

    # --- both sides ----------------------------------------------------------------------------------

    def is_stopped(self, name: str) -> bool:
        return (self.path / f"{name}{_STOPPED}").exists()

    def mark_stopped(self, name: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / f"{name}{_STOPPED}").touch()

    def clear_stopped(self, name: str) -> None:
        (self.path / f"{name}{_STOPPED}").unlink(missing_ok=True)

    def pid(self, name: str) -> int | None:
        try:
            return int((self.path / f"{name}{_PID}").read_text().strip())
        except (OSError, ValueError):
            return None

    # --- the operator's side -------------------------------------------------------------------------

    def runner_active(self) -> bool:
        """Someone holds the runner lock (a `make run` on this data directory is alive)."""
        if self._lock is not None:
            return True
        try:
            handle = (self.path / _LOCK).open("a")
        except OSError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def runner(self) -> RunnerInfo | None:
        """The running `make run`, or None when none runs on this data directory."""
        if not self.path.is_dir() or not self.runner_active():
            return None
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            raw = json.loads((self.path / _INFO).read_text())
            return RunnerInfo(
                pid=int(raw["pid"]),
                apps=tuple(raw["apps"]),
                servers=tuple(raw["servers"]),
                api_url=str(raw["api_url"]),
                data_dir=str(raw["data_dir"]),
                durable=bool(raw["durable"]),
            )
        return None


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # The state follows the parenthesised command name, which may itself hold spaces.
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not os.path.exists("/proc/self")  # no /proc: trust kill(0)


def _write_atomic(path: Path, text: str) -> None:
    # A reader never sees a half-written file.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
