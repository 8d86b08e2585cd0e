"""Finding and pausing the local servers, to simulate a dependency that stops answering for a while."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pid_listening_with(*fragments: str) -> int:
    """The pid of the process whose command line holds every fragment (e.g. the jar name and its port)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(f in cmdline for f in fragments):
            return int(entry.name)
    raise LookupError(f"no process with {fragments}")


@contextmanager
def frozen(pid: int, seconds: float) -> Iterator[None]:
    """SIGSTOP the process, let the body run, keep it stopped for `seconds` in all, then SIGCONT."""
    os.kill(pid, signal.SIGSTOP)
    began = time.monotonic()
    try:
        yield
        remaining = seconds - (time.monotonic() - began)
        if remaining > 0:
            time.sleep(remaining)
    finally:
        os.kill(pid, signal.SIGCONT)
