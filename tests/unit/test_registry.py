"""The registry of apps (consumers/registry.py) is the one list: every consumer app is in it, and
what reads it agrees with the contract's topics."""

from __future__ import annotations

from pathlib import Path

from consumers.registry import APPS, CONSUMER_GROUPS, CONSUMERS, SETTLING
from infra.local.processes import app_processes
from schemas.catalogue import TOPIC_MESSAGES
from schemas.topics import COMMAND_TOPICS, EVENT_TOPICS, PRICES

ROOT = Path(__file__).resolve().parents[2]


def test_every_consumer_app_is_registered() -> None:
    found = {f"consumers.{path.parent.name}.app:app" for path in (ROOT / "consumers").glob("*/app.py")}
    registered = {spec.app for spec in CONSUMERS.values()}
    assert found == registered, f"apps not in the registry: {found - registered}; gone: {registered - found}"


def test_every_topic_of_the_contract_is_read_and_written_by_someone() -> None:
    read = {t for spec in CONSUMERS.values() for t in spec.reads}
    written = {t for spec in APPS.values() for t in spec.writes}
    # Commands are written by the API, which is not a registered app.
    assert set(COMMAND_TOPICS) <= read
    assert set(EVENT_TOPICS) <= written and PRICES in written and PRICES in read
    assert (read | written) <= set(TOPIC_MESSAGES)


def test_names_and_metrics_ports_are_unique() -> None:
    ports = [spec.metrics_port for spec in APPS.values()]
    assert len(set(ports)) == len(ports)
    assert {name: spec.reads for name, spec in CONSUMERS.items()} == CONSUMER_GROUPS
    assert "prices" in CONSUMER_GROUPS, "`ledgerflow lag` must show the price recorder too"
    assert set(SETTLING) == {"ledger", "trading", "portfolio"}


def test_make_run_starts_every_registered_app_on_its_metrics_port() -> None:
    procs = {p.name: p for p in app_processes(8123)}
    assert set(procs) == {"api", *APPS}
    for name, spec in APPS.items():
        assert procs[name].argv[-1] == spec.app
        assert procs[name].env["LEDGERFLOW_METRICS_PORT"] == str(spec.metrics_port)
        assert procs[name].metrics_url == f"http://127.0.0.1:{spec.metrics_port}/metrics"
    moved = {p.name: p for p in app_processes(8123, metrics_ports={"ledger": 19999})}
    assert moved["ledger"].env["LEDGERFLOW_METRICS_PORT"] == "19999"
    assert procs["api"].metrics_url == "http://127.0.0.1:8123/metrics"
