"""What the deployment files (compose.yaml, infra/deploy/) are checked against: the processes, the
consumer groups with their topics, and the metrics the dashboards and alerts may name.

The consumer list and the expected ledgerflow metrics live here only, so that switching them to the
code's own registry of consumers and metrics is a change of this module alone.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from schemas.topics import DEPOSIT_COMMANDS, ORDER_COMMANDS, ORDER_EVENTS, PRICES, WITHDRAWAL_COMMANDS

ROOT: Final = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Consumer:
    name: str  # the process (infra/local/processes.py), the compose service, the Kubernetes Deployment
    group: str
    app: str  # what `faststream run` is given
    topics: tuple[str, ...]


CONSUMERS: Final = (
    Consumer("ledger", "ledger", "consumers.ledger.app:app", (DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS)),
    Consumer("trading", "trading", "consumers.trading.app:app", (ORDER_COMMANDS,)),
    Consumer("portfolio", "portfolio", "consumers.portfolio.app:app", (ORDER_EVENTS,)),
    Consumer("prices", "prices", "consumers.prices.app:app", (PRICES,)),
)
API: Final = "api"
API_PORT: Final = 8080
PRICE_FEED: Final = "price-feed"
# Every process Prometheus scrapes: the API on its own port, the others on their metrics port.
APP_PROCESSES: Final = (API, *(c.name for c in CONSUMERS), PRICE_FEED)

# The consumers' and the price feed's metrics port (`LEDGERFLOW_METRICS_PORT` inside the containers).
METRICS_PORT: Final = 9100
METRICS_PORT_SETTING: Final = "LEDGERFLOW_METRICS_PORT"
# Modules a deployment file already runs but that are still being written. Their top-level package
# must exist; the module itself may not yet. Remove an entry once its module lands.
PENDING_MODULES: Final[frozenset[str]] = frozenset()
# Settings the deployment files already set but infra.settings.Settings does not have yet (another
# branch adds them). Remove an entry once the field exists.
PENDING_SETTINGS: Final = frozenset({"metrics_port"})

# ledgerflow's own metrics as the consumers will export them: name -> (Prometheus type, label names).
# The API's come from api/middleware.py itself. Align with the code that defines them, then read them
# from it as known_series() does for the API's.
EXPECTED_LEDGERFLOW_METRICS: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "ledgerflow_intake_total": ("counter", frozenset({"kind", "outcome"})),
    "ledgerflow_outcomes_total": ("counter", frozenset({"kind", "outcome", "reason"})),
    "ledgerflow_dead_letters_total": ("counter", frozenset({"topic", "reason"})),
    "ledgerflow_retries_total": ("counter", frozenset()),
    "ledgerflow_batch_size": ("histogram", frozenset()),
    "ledgerflow_consumer_lag": ("gauge", frozenset({"group", "topic", "partition"})),
    "ledgerflow_oldest_unsettled_seconds": ("gauge", frozenset({"group"})),
}
# Labels Prometheus adds to every series it scrapes, and the series it adds to every scrape.
TARGET_LABELS: Final = frozenset({"job", "instance"})
SCRAPE_SERIES: Final = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_SUFFIXES: Final = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def series_labels(name: str, kind: str, labels: Iterable[str]) -> dict[str, frozenset[str]]:
    """The series a metric exposes, each with its label names (a histogram's buckets add `le`)."""
    base = name.removesuffix("_total") if kind == "counter" else name
    labels = frozenset(labels) | TARGET_LABELS
    return {base + s: labels | {"le"} if s == "_bucket" else labels for s in _SUFFIXES[kind]}


def _exported(registry: CollectorRegistry) -> dict[str, frozenset[str]]:
    series: dict[str, frozenset[str]] = {}
    # prometheus_client keeps a metric's label names only on the metric object (a family without
    # samples does not report them).
    for collector in set(registry._collector_to_names):
        if isinstance(collector, MetricWrapperBase):  # not the process, platform and GC collectors
            series |= series_labels(collector._name, collector._type, collector._labelnames)
    return series


def known_series() -> dict[str, frozenset[str]]:
    """Every series a dashboard panel or an alert rule may select, with the labels it carries."""
    from faststream.prometheus.container import MetricsContainer
    from prometheus_client import REGISTRY

    importlib.import_module("api.middleware")  # registers the API's metrics in the default registry
    faststream = CollectorRegistry()
    MetricsContainer(faststream, custom_label_names=())
    api_series = {k: v for k, v in _exported(REGISTRY).items() if k.startswith("ledgerflow_")}
    expected: dict[str, frozenset[str]] = {}
    for name, (kind, labels) in EXPECTED_LEDGERFLOW_METRICS.items():
        expected |= series_labels(name, kind, labels)
    scrape = {name: TARGET_LABELS for name in SCRAPE_SERIES}
    return _exported(faststream) | api_series | expected | scrape


def wheel_packages() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert packages, "pyproject.toml lists no wheel packages"
    return [str(p) for p in packages]


def module_of(command: Sequence[str]) -> str | None:
    """The Python module a process command runs, or None for a command that runs no module of ours."""
    command = list(command)
    if command[:2] == ["faststream", "run"] and len(command) > 2:
        return command[2].split(":", 1)[0]
    if command[:1] == ["uvicorn"]:
        target = next(arg for arg in command[1:] if not arg.startswith("-"))
        return target.split(":", 1)[0]
    if command[:1] in (["python"], ["python3"]) and "-m" in command:
        return command[command.index("-m") + 1]
    return None


def _module_exists(module: str, *, as_main: bool) -> bool:
    path = ROOT.joinpath(*module.split("."))
    if as_main:  # `python -m pkg` runs pkg/__main__.py
        return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def assert_runs_a_module_of_this_repo(command: Sequence[str], what: str) -> None:
    module = module_of(command)
    assert module is not None, f"{what}: cannot tell which module {command} runs"
    package = module.split(".", 1)[0]
    assert package in wheel_packages(), f"{what}: {package} is not a package of the wheel"
    assert (ROOT / package).is_dir(), f"{what}: no {package}/ directory"
    as_main = list(command[:1]) in (["python"], ["python3"])
    assert _module_exists(module, as_main=as_main) or module in PENDING_MODULES, (
        f"{what}: module {module} does not exist and is not listed as pending"
    )
