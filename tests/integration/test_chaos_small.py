"""A small run of the fault suite (`make chaos` is the full one): same code, fewer commands and kills."""

from __future__ import annotations

import subprocess
import sys

import pytest

from infra.local.install import PROJECT_ROOT

pytestmark = pytest.mark.integration


@pytest.mark.timeout(240)
def test_a_small_chaos_run_loses_and_doubles_nothing() -> None:
    # A subprocess: the suite starts its own servers and sets its own environment.
    done = subprocess.run(
        [sys.executable, "-m", "tests.chaos", "--commands", "300", "--accounts", "10", "--kills", "3"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    tail = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    assert "PASSED" in done.stdout, tail
    assert "without a terminal status        0" in done.stdout
