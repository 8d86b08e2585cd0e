"""What the deployment files (compose.yaml, infra/deploy/) are checked against: the app processes (the
code's registry, consumers/registry.py) and the metrics the dashboards and alerts may name (read from the
code's own metric objects, so neither list can drift from what the processes export).
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from consumers.registry import APPS, AppSpec
from consumers.registry import PRICE_FEED as PRICE_FEED_APP

ROOT: Final = Path(__file__).resolve().parents[2]

API: Final = "api"
API_PORT: Final = 8080
PRICE_FEED: Final = PRICE_FEED_APP.name
# Every process Prometheus scrapes: the API on its own port, every app of the registry on its metrics port.
APP_PROCESSES: Final = (API, *APPS)

# Inside a container every app serves its metrics on this one port, on every interface (the registry's
# per-app ports only keep `make run`'s processes apart on one host; the setting's address defaults to
# 127.0.0.1, which neither the kubelet's probes nor Prometheus could reach).
METRICS_PORT: Final = 9100
METRICS_PORT_SETTING: Final = "LEDGERFLOW_METRICS_PORT"
METRICS_ADDR: Final = "0.0.0.0"
METRICS_ADDR_SETTING: Final = "LEDGERFLOW_METRICS_ADDR"
# Modules a deployment file already runs but that are still being written. Their top-level package
# must exist; the module itself may not yet. Remove an entry once its module lands.
PENDING_MODULES: Final[frozenset[str]] = frozenset()

# The modules that define ledgerflow's own metrics (importing one registers its metrics in the default
# registry): the consumers' (and the price feed's, which shares their runtime), and the API's (the
# middleware's request metrics and api.metrics' intake counter).
METRIC_MODULES: Final = ("consumers.common.metrics", "api.middleware", "api.metrics")
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


def ledgerflow_series() -> dict[str, frozenset[str]]:
    """ledgerflow's own series (`ledgerflow_*`), as the code defines them, with their labels."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    return {name: labels for name, labels in _exported(REGISTRY).items() if name.startswith("ledgerflow_")}


def known_series() -> dict[str, frozenset[str]]:
    """Every series a dashboard panel or an alert rule may select, with the labels it carries."""
    from faststream.prometheus.container import MetricsContainer

    # FastStream's middleware series, from a registry of their own (the default one may hold them
    # already, and registering them twice there would fail).
    faststream = CollectorRegistry()
    MetricsContainer(faststream, custom_label_names=())
    scrape = {name: TARGET_LABELS for name in SCRAPE_SERIES}
    return _exported(faststream) | ledgerflow_series() | scrape


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


def assert_runs_app(command: Sequence[str], app: AppSpec) -> None:
    """`command` runs the registry's `app`: `faststream run` its app, or `python -m` its package (the
    price feed's `python -m producers.prices`, whose __main__ runs the registered app)."""
    module = module_of(command)
    runs = module is not None and (app.module == module or app.module.startswith(f"{module}."))
    assert runs, f"{app.name}: {list(command)} does not run {app.app}"
