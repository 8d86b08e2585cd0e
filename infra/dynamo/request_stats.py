"""Counts this process's DynamoDB HTTP requests by operation, for the benchmark (`make bench`).

Off unless `LEDGERFLOW_STATS_DIR` is set. Then every DynamoDB client counts each request it sends
(retries included: a botocore `before-send` hook, one dict increment) and a daemon thread writes the
counts as JSON to `<dir>/<service>-<pid>.json` every second and at exit. Nothing else reads them.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Final

WRITE_INTERVAL_S: Final = 1.0

_counts: Counter[str] = Counter()
_lock = threading.Lock()
_writer_dir: Path | None = None


def count_requests(client: Any, stats_dir: str) -> None:
    """Make `client` (an aiobotocore DynamoDB client) count its requests into this process's file."""
    client.meta.events.register("before-send.dynamodb", _count)
    _start_writer(Path(stats_dir))


def _count(event_name: str, **_: Any) -> None:
    # event_name is "before-send.dynamodb.<Operation>". The GIL makes this increment safe enough here:
    # every caller runs on the event loop thread; the writer only copies.
    _counts[event_name.rpartition(".")[2]] += 1


def service_name(argv: list[str]) -> str:
    """A short name for the process: the app module it runs (`consumers.ledger.app:app` -> `ledger`)."""
    for arg in argv[1:]:
        module, colon, _ = arg.partition(":")
        if colon and "." in module:
            parts = module.split(".")
            return parts[1] if parts[0] == "consumers" and len(parts) > 1 else parts[0]
    return Path(argv[0]).stem if argv else "process"


def _start_writer(directory: Path) -> None:
    global _writer_dir
    with _lock:
        if _writer_dir is not None:
            return
        _writer_dir = directory
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{service_name(sys.argv)}-{os.getpid()}.json"
    stop = threading.Event()

    def write() -> None:
        body = json.dumps({"pid": os.getpid(), "argv": sys.argv, "dynamodb": dict(_counts)})
        tmp = path.with_suffix(".tmp")
        tmp.write_text(body)
        os.replace(tmp, path)

    def loop() -> None:
        while not stop.wait(WRITE_INTERVAL_S):
            write()

    def at_exit() -> None:
        stop.set()
        write()

    threading.Thread(target=loop, name="ledgerflow-request-stats", daemon=True).start()
    atexit.register(at_exit)
