"""One deposit is one trace, from the POST through Kafka to the DynamoDB transaction and the published
event, as the in-memory exporter records it (tests/support/one_deposit_trace.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.isolated import IsolatedSystem, isolated_system

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def servers(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedSystem]:
    with isolated_system(tmp_path_factory.mktemp("tracing"), env, apps=()) as system:
        yield system


def _tree(spans: list[dict[str, Any]], root: dict[str, Any]) -> list[str]:
    """The trace as indented lines: name, start after the root and duration, in ms."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        children.setdefault(span["parent_id"], []).append(span)
    lines: list[str] = []

    def walk(span: dict[str, Any], depth: int) -> None:
        start_ms = (span["start_ns"] - root["start_ns"]) / 1e6
        took_ms = (span["end_ns"] - span["start_ns"]) / 1e6
        lines.append(f"{'  ' * depth}{span['name']} [{span['kind']}] +{start_ms:.1f} ms, {took_ms:.1f} ms")
        for child in sorted(children.get(span["span_id"], []), key=lambda s: s["start_ns"]):
            walk(child, depth + 1)

    walk(root, 0)
    return lines


def test_one_deposit_is_one_trace_from_the_post_to_the_published_event(servers: IsolatedSystem) -> None:
    env = {**servers.env, "OTEL_TRACES_SAMPLER": "always_on", "LEDGERFLOW_METRICS_PORT": "0"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    run = subprocess.run(
        [sys.executable, "-m", "tests.support.one_deposit_trace"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    spans = [line for line in lines if "span_id" in line]
    post = next(s for s in spans if s["name"] == "POST /v1/deposits")
    trace = [s for s in spans if s["trace_id"] == post["trace_id"]]
    by_id = {s["span_id"]: s for s in trace}

    print("\n".join(_tree(trace, post)))  # the closing note quotes it

    def parent(span: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = by_id[span["parent_id"]]
        return found

    def one(name: str) -> dict[str, Any]:
        found = [s for s in trace if s["name"] == name]
        assert len(found) == 1, (name, sorted(s["name"] for s in trace))
        only: dict[str, Any] = found[0]
        return only

    # The intake: its Redis round trip and the acknowledged publish, inside the request.
    publish = one("commands.deposit publish")
    assert publish["kind"] == "PRODUCER" and parent(publish) is post
    assert any(s["attributes"].get("db.system") == "redis" and parent(s) is post for s in trace)
    # The ledger: the command's span is the publish's child (the traceparent header crossed Kafka) ...
    command = one("ledger Deposit")
    assert command["kind"] == "CONSUMER" and parent(command) is publish
    # ... its settlement reads and writes DynamoDB in one transaction, then publishes the event.
    settle = one("ledger settle")
    assert parent(settle) is command
    writes = [s for s in trace if s["name"] == "DynamoDB.TransactWriteItems"]
    assert len(writes) == 1 and parent(writes[0]) is settle, [s["name"] for s in trace]
    assert writes[0]["attributes"].get("rpc.system") == "aws-api"
    event = one("events.balance publish")
    assert parent(event) is settle and event["start_ns"] > writes[0]["end_ns"]
