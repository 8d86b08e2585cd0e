"""Offline checks of compose.yaml's observability profile (infra/deploy/observability).

- Prometheus scrapes every app process (the API and the registry's apps, consumers/registry.py) at the
  port that process serves its metrics on in compose.yaml.
- Every PromQL expression, in the alert rules and in each panel of the provisioned Grafana dashboard,
  parses (promql-parser, the Rust parser's Python binding) and selects only series the processes export
  (FastStream's Prometheus middleware as installed, and ledgerflow's own metrics read from the API's and
  the consumers' metric objects: tests/support/deployment.py).
- The alert rules watch lag, dead letters and the oldest unsettled command, and the README explains each.
- With promtool installed (Debian's `prometheus` package), `promtool check config`, `check rules` and the
  alert rules' own unit tests (`promtool test rules`) run as well.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from infra.local.install import debian_tool
from tests.support.deployment import (
    API,
    API_PORT,
    APP_PROCESSES,
    METRICS_ADDR,
    METRICS_ADDR_SETTING,
    METRICS_PORT,
    METRICS_PORT_SETTING,
    ROOT,
    known_series,
)

OBSERVABILITY = ROOT / "infra" / "deploy" / "observability"
PROMETHEUS_CONFIG = OBSERVABILITY / "prometheus" / "prometheus.yml"
ALERT_RULES = OBSERVABILITY / "prometheus" / "alerts.yml"
ALERT_TESTS = OBSERVABILITY / "prometheus" / "alerts_test.yml"
GRAFANA = OBSERVABILITY / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
COMPOSE_FILE = ROOT / "compose.yaml"
PROFILE = "observability"
PROFILE_SERVICES = ("prometheus", "grafana", "jaeger", "kafka-ui")

# What the issue asks the dashboard to show, as the series that show it.
DASHBOARD_MUST_SHOW = (
    "ledgerflow_intake_commands_total",  # intake rate
    "ledgerflow_http_request_seconds_bucket",  # intake latency
    "faststream_received_processed_messages_total",  # fetched batches handled
    "faststream_received_processed_messages_duration_seconds_bucket",  # settle latency (per batch)
    "ledgerflow_consumer_outcomes_total",  # settle rate, by result
    "ledgerflow_consumer_dead_letters_total",
    "ledgerflow_consumer_lag_records",
    "ledgerflow_consumer_oldest_unsettled_seconds",
    "ledgerflow_consumer_settle_batch_messages_bucket",
    "ledgerflow_consumer_retries_total",  # DynamoDB and Kafka faults, retried
    "faststream_published_messages_exceptions_total",  # Kafka errors
)
ALERTS_MUST_WATCH = (
    "ledgerflow_consumer_lag_records",
    "ledgerflow_consumer_dead_letters_total",
    "ledgerflow_consumer_oldest_unsettled_seconds",
)
SEVERITIES = ("warning", "critical")


# --------------------------------------------------------------------------------------------- helpers


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@functools.cache
def _compose_services() -> dict[str, Any]:
    services = _yaml(COMPOSE_FILE)["services"]
    assert isinstance(services, dict)
    return services


def _selectors(node: Any) -> list[Any]:
    found: list[Any] = []

    def visit(child: Any) -> None:
        if isinstance(child, promql_parser.VectorSelector):
            found.append(child)

    promql_parser.walk(node, visit)
    return found


def _selected_series(expr: str) -> set[str]:
    """The metric names an expression selects (ValueError if it does not parse)."""
    return {selector.name for selector in _selectors(promql_parser.parse(expr))}


def _assert_known(expr: str, where: str) -> set[str]:
    """The series `expr` selects, each exported by a process, with every label it names."""
    try:
        tree = promql_parser.parse(expr)
    except ValueError as error:
        raise AssertionError(f"{where}: {expr!r} does not parse: {error}") from error
    known = known_series()
    selected = set()
    for selector in _selectors(tree):
        assert selector.name, f"{where}: a selector without a metric name in {expr!r}"
        assert selector.name in known, f"{where}: no process exports {selector.name}"
        matched = {m.name for m in selector.matchers.matchers} - {"__name__"}
        assert matched <= known[selector.name], (
            f"{where}: {selector.name} has no {matched - known[selector.name]}"
        )
        selected.add(selector.name)

    def grouping(node: Any) -> None:
        # `sum by (x)` needs x on the series below it (a missing label quietly groups everything).
        modifier = getattr(node, "modifier", None) if isinstance(node, promql_parser.AggregateExpr) else None
        if modifier is not None and modifier.type == promql_parser.AggModifierType.By:
            available = set().union(*(known[s.name] for s in _selectors(node.expr)))
            assert set(modifier.labels) <= available, (
                f"{where}: no {set(modifier.labels) - available} to group by"
            )

    promql_parser.walk(tree, grouping)
    return selected


def _rules() -> list[dict[str, Any]]:
    groups = _yaml(ALERT_RULES)["groups"]
    assert groups and all(group["name"] and group["rules"] for group in groups)
    return [rule for group in groups for rule in group["rules"]]


def _dashboards() -> list[Path]:
    found = sorted(DASHBOARDS.glob("*.json"))
    assert found, f"no dashboard in {DASHBOARDS}"
    return found


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included; rows themselves are not panels."""
    flat: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        flat += [panel, *panel.get("panels", [])]
    return [p for p in flat if p["type"] != "row"]


def _promtool() -> str:
    promtool = debian_tool("promtool", "prometheus")
    if promtool is None:
        pytest.skip(
            "promtool is not installed and `apt-get install -y prometheus` was not possible "
            "(it needs root and a reachable Debian mirror)"
        )
    return str(promtool)


# ------------------------------------------------------------------------------------------ Prometheus


def test_prometheus_scrapes_every_app_process_where_it_serves_metrics() -> None:
    config = _yaml(PROMETHEUS_CONFIG)
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }
    assert sorted(targets) == sorted(APP_PROCESSES), "one scrape job per app process, named after it"
    services = _compose_services()
    for name in APP_PROCESSES:
        port = API_PORT if name == API else METRICS_PORT
        assert targets[name] == [f"{name}:{port}"], name
        service = services[name]  # the target is the compose service of that name
        if name == API:
            command = service["command"]
            assert command[command.index("--port") + 1] == str(port)
        else:
            assert service["environment"][METRICS_PORT_SETTING] == str(port), name
            assert service["environment"][METRICS_ADDR_SETTING] == METRICS_ADDR, name
            assert str(port) in service.get("expose", []), name


def test_prometheus_loads_the_alert_rules() -> None:
    config = _yaml(PROMETHEUS_CONFIG)
    rule_files = [PROMETHEUS_CONFIG.parent / f for f in config["rule_files"]]
    assert ALERT_RULES in rule_files and all(f.is_file() for f in rule_files)


def test_alert_rules_parse_and_name_exported_metrics() -> None:
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule[
            "alert"
        ]
        _assert_known(rule["expr"], rule["alert"])
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]


def test_alerts_watch_lag_dead_letters_and_unsettled_commands() -> None:
    watched = {series for rule in _rules() for series in _selected_series(rule["expr"])}
    assert set(ALERTS_MUST_WATCH) <= watched


def test_the_readme_says_what_each_alert_means() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [rule["alert"] for rule in _rules() if f"`{rule['alert']}`" not in readme]
    assert not missing, f"README does not explain {missing}"


def test_promtool_accepts_the_config_and_the_rules() -> None:
    promtool = _promtool()
    for args in (["check", "config", str(PROMETHEUS_CONFIG)], ["check", "rules", str(ALERT_RULES)]):
        result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_when_they_should() -> None:
    promtool = _promtool()
    result = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ALERT_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------- Grafana


def test_grafana_provisions_the_datasources_and_the_dashboards_folder() -> None:
    datasources = _yaml(GRAFANA / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    urls = {ds["type"]: ds["url"] for ds in datasources}
    assert urls["prometheus"] == "http://prometheus:9090"
    assert urls["jaeger"].startswith("http://jaeger:")
    provider = _yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")["providers"]
    paths = {p["options"]["path"] for p in provider}
    volumes = _compose_services()["grafana"]["volumes"]
    mounted = {
        target.removesuffix(":ro"): source for source, _, target in (v.partition(":") for v in volumes)
    }
    assert paths <= mounted.keys(), f"Grafana reads {paths} but compose mounts {sorted(mounted)}"
    for path in paths:
        assert (ROOT / mounted[path]).resolve() == DASHBOARDS


@pytest.mark.parametrize("path", _dashboards(), ids=lambda p: p.name)
def test_dashboard_panels_query_exported_metrics(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    datasource_uids = {
        ds["uid"] for ds in _yaml(GRAFANA / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    }
    every = [*dashboard["panels"], *(p for row in dashboard["panels"] for p in row.get("panels", []))]
    ids = [panel["id"] for panel in every]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    panels = _panels(dashboard)
    shown: set[str] = set()
    for panel in panels:
        where = f"{path.name}: panel {panel['title']!r}"
        assert panel["datasource"]["uid"] in datasource_uids, where
        assert panel["targets"], f"{where} has no query"
        for target in panel["targets"]:
            shown |= _assert_known(target["expr"], where)
    missing = set(DASHBOARD_MUST_SHOW) - shown
    assert not missing, f"{path.name} shows nothing of {sorted(missing)}"


# ------------------------------------------------------------------------------------- compose profile


def test_observability_is_an_opt_in_profile_on_local_ports() -> None:
    services = _compose_services()
    for name, service in services.items():
        if name in PROFILE_SERVICES:
            assert service.get("profiles") == [PROFILE], name
        else:
            assert "profiles" not in service, f"{name}: the system itself must start without a profile"
    for name in PROFILE_SERVICES:
        service = services[name]
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is published beyond this machine"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_kafka_ui_browses_the_compose_broker() -> None:
    services = _compose_services()
    env = services["kafka-ui"]["environment"]
    assert (
        env["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"]
        == services[API]["environment"]["LEDGERFLOW_KAFKA_BOOTSTRAP_SERVERS"]
    )
