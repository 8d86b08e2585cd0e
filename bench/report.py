"""Text for the terminal: one block of figures per variant, then the side-by-side table with ratios."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bench.metrics import ratio

# (label, path into a variant's figures); a row of the comparison table each.
TABLE_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("accepted POST/s", ("accepted_per_s",)),
    ("settled commands/s", ("settled_per_s",)),
    ("POST p50 ms", ("post_latency", "p50_ms")),
    ("POST p99 ms", ("post_latency", "p99_ms")),
    ("POST->settled p50 ms", ("settle_latency", "p50_ms")),
    ("POST->settled p95 ms", ("settle_latency", "p95_ms")),
    ("POST->settled p99 ms", ("settle_latency", "p99_ms")),
    ("DynamoDB requests/command", ("dynamodb_requests_per_command",)),
    ("Redis commands/POST", ("redis_commands_per_post",)),
    ("CPU s/1000 commands", ("cpu_s_per_1000_commands_total",)),
)


def lookup(figures: Mapping[str, Any], path: tuple[str, ...]) -> float:
    value: Any = figures
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return math.nan
        value = value[key]
    return float(value) if isinstance(value, int | float) else math.nan


def number(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def comparison(runs: Mapping[str, Mapping[str, Any]]) -> str:
    """The table: one column per variant, and the ratio of each to the first."""
    names = list(runs)
    header = ["figure", *names, *(f"{n}/{names[0]}" for n in names[1:])]
    rows = [header]
    for label, path in TABLE_ROWS:
        values = [lookup(runs[n], path) for n in names]
        if all(math.isnan(v) for v in values):
            continue
        ratios = [ratio(v, values[0]) for v in values[1:]]
        rows.append([label, *(number(v) for v in values), *(_times(r) for r in ratios)])
    return _columns(rows)


def _times(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}x"


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def variant_block(name: str, figures: Mapping[str, Any]) -> str:
    """Every figure of one variant, a few lines."""
    post, settle = figures.get("post_latency", {}), figures.get("settle_latency", {})
    lines = [
        f"== {name} ({figures.get('mode')}, {figures.get('accounts')} accounts, "
        f"{figures.get('window_s')} s measured)",
        f"  accepted POST/s {number(lookup(figures, ('accepted_per_s',)))}, "
        f"settled/s {number(lookup(figures, ('settled_per_s',)))}, "
        f"outcomes {figures.get('outcomes')} ({figures.get('rejected')} rejected), "
        f"unsettled {figures.get('unsettled')}, POST statuses {figures.get('post_statuses')}",
        *([f"  UNSETTLED command ids: {' '.join(ids)}"] if (ids := figures.get("unsettled_ids")) else []),
        f"  POST latency ms: {_percentiles(post)}",
        f"  POST->settled ms: {_percentiles(settle)}",
        f"  per {figures.get('per_command_basis', 'command')}: "
        f"DynamoDB requests {number(lookup(figures, ('dynamodb_requests_per_command',)))} "
        f"{_pairs(figures.get('dynamodb_by_operation', {}))}",
        f"  Redis commands per accepted POST {number(lookup(figures, ('redis_commands_per_post',)))} "
        f"{_pairs(figures.get('redis_by_command', {}))}",
        f"  CPU s per 1000 commands: {number(lookup(figures, ('cpu_s_per_1000_commands_total',)))} in all; "
        f"{_pairs(figures.get('cpu_s_per_1000_commands', {}))}",
        f"  CPU % of the box: {_pairs(figures.get('cpu_percent_of_box', {}))}",
    ]
    if "settled_per_s_with_startup" in figures:
        lines.append(
            f"  drain: {figures['settled_per_s_with_startup']}/s counting consumer start-up "
            f"({figures.get('consumers_started_to_first_outcome_s')} s to the first outcome)"
        )
    return "\n".join(lines)


def _percentiles(summary: Mapping[str, Any]) -> str:
    keys = ("p50_ms", "p95_ms", "p99_ms", "max_ms")
    return ", ".join(f"{k[:-3]} {number(float(summary.get(k, math.nan)))}" for k in keys) + (
        f" (n={summary.get('n', 0)})"
    )


def _pairs(values: Mapping[str, Any]) -> str:
    if not values:
        return ""
    ordered = sorted(values.items(), key=lambda kv: -float(kv[1]) if not math.isnan(float(kv[1])) else 0)
    return "(" + ", ".join(f"{k} {number(float(v))}" for k, v in ordered) + ")"
