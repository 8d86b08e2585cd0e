"""Running the operator CLI as operators do: a separate process with the environment's settings."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from infra.local.install import PROJECT_ROOT


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout_s: float = 120) -> CliResult:
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli.main", *args],
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


async def cli(*args: str, env: Mapping[str, str] | None = None, timeout_s: float = 120) -> CliResult:
    """The same, from async tests, without blocking their event loop."""
    return await asyncio.to_thread(run_cli, *args, env=env, timeout_s=timeout_s)
