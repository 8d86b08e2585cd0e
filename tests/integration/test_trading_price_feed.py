"""The price producer in replay mode, end to end: CSV -> `prices` -> latest price -> `GET /v1/assets`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.trading import wait_for_price

pytestmark = pytest.mark.integration


async def test_a_recording_is_replayed_into_the_latest_prices(
    http: httpx.AsyncClient, env: dict[str, str], tmp_path: Path
) -> None:
    # EOS is ticked by no other test; the last row of the recording is the price that must stick.
    recording = tmp_path / "eos.csv"
    recording.write_text("elapsed_s,asset,price\n0,EOS,0.5601\n0.5,EOS,0.5633\n1,eos,0.5588\n")
    log = (tmp_path / "feed.log").open("wb")
    feed = subprocess.Popen(  # noqa: ASYNC220 (started once, not awaited on)
        [sys.executable, "-m", "producers.prices"],
        env={
            **os.environ,
            **env,
            "LEDGERFLOW_PRICE_FEED": "replay",
            "LEDGERFLOW_PRICE_REPLAY_CSV": str(recording),
            "LEDGERFLOW_PRICE_REPLAY_SPEED": "10",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await wait_for_price(http, "EOS", "0.5588")
    except AssertionError:
        feed.terminate()
        feed.wait(timeout=20)
        print((tmp_path / "feed.log").read_text())
        raise
    feed.terminate()
    assert feed.wait(timeout=20) == 0
