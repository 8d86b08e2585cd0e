"""`make bench`: the load benchmark. Starts a system of its own (servers on free ports, in memory; the API
and every consumer as processes, as `make run` does) for each variant in turn, drives it the way clients
do, and prints the figures and a side-by-side table. Writes them as JSON and a PNG plot to
bench/results/<timestamp>.json|png. Asserts nothing; never touches a running `make run`.

Modes:
  (default)       end to end: deposits, withdrawals, market buys and sells over HTTP, each followed to
                  its outcome event; closed loop (--concurrency commands in flight, each client waiting
                  for its command's outcome before the next) or open loop (--rate POSTs per second).
  --intake-only   POSTs only, nothing settles (only the API and the price consumer run): the intake's
                  ceiling in accepted POST/s.
  --settle-only   --commands commands published straight onto the command topics with no consumer
                  running; then the consumers start and the drain is timed (settled/s).

Figures: accepted POST/s and settled commands/s over the measured window (after --warmup);
p50/p95/p99 of POST latency and of POST->settled (the outcome event's Kafka timestamp minus the time the
POST was sent, or due in open loop); DynamoDB requests per settled command (counted in every process,
LEDGERFLOW_STATS_DIR); Redis commands per accepted POST (INFO commandstats, server side: commands, not
round trips); CPU-seconds per 1,000 commands of every server and app process and of the load generator
(/proc/<pid>/stat). Figures are only as good as the box is quiet.

Variants (--variants, run one after the other on fresh systems, same load):
{variants}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bench.load import LoadConfig, Mode, drive
from bench.report import comparison, variant_block
from bench.system import BASE_APPS, SETTLING_APPS, started_system
from bench.variants import (
    DEFAULT_VARIANTS,
    VARIANTS,
    Variant,
    VariantError,
    parse_definition,
    parse_env_pairs,
    select,
)
from bench.workload import DEFAULT_MIX, parse_mix
from infra.local.install import PROJECT_ROOT
from infra.logging import configure_logging
from infra.settings import Settings

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"


def _positive(kind: type[int] | type[float]) -> Any:
    def check(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0 or (isinstance(value, float) and math.isinf(value)):
            raise argparse.ArgumentTypeError(f"{text!r}: must be above 0")
        return value

    return check


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 0 or more")
    return value


def parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {v.name:<10} {v.description}; env {dict(v.env)}" for v in VARIANTS.values())
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=(__doc__ or "").format(variants=listing),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--intake-only", action="store_true", help="POSTs only, no consumer settling them")
    mode.add_argument("--settle-only", action="store_true", help="time the consumers draining a loaded topic")
    p.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help="comma-separated variants to run side by side, in this order (default: %(default)s)",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE;...",
        help="define (or redefine) a variant by its env overrides, e.g. "
        "'big:LEDGERFLOW_KAFKA_BATCH_MAX_RECORDS=500'; name it in --variants to run it",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an env override for every variant's apps (repeatable)",
    )
    p.add_argument("--accounts", type=_positive(int), default=20, help="users sending (default: %(default)s)")
    p.add_argument(
        "--duration",
        type=_positive(float),
        default=60.0,
        help="measured seconds per variant (default: %(default)s)",
    )
    p.add_argument(
        "--warmup",
        type=_non_negative,
        default=10.0,
        help="seconds of load before measuring (default: %(default)s)",
    )
    p.add_argument("--rate", type=_positive(float), help="open loop: POSTs per second (default: closed loop)")
    p.add_argument(
        "--concurrency",
        type=_positive(int),
        default=100,
        help="closed loop: commands in flight, each awaited to its outcome (default: %(default)s)",
    )
    p.add_argument(
        "--connections",
        type=_positive(int),
        default=32,
        help="HTTP keep-alive connections (default: %(default)s)",
    )
    p.add_argument(
        "--commands",
        type=_positive(int),
        default=20_000,
        help="settle-only: commands loaded before the consumers start (default: %(default)s)",
    )
    p.add_argument(
        "--mix",
        default=",".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items()),
        help="command mix as KIND=WEIGHT (default: %(default)s); a debit without the funds becomes a deposit",
    )
    p.add_argument(
        "--drain-timeout",
        type=_positive(float),
        default=30.0,
        help="seconds without a new outcome before unsettled commands are given up (default: %(default)s)",
    )
    p.add_argument("--idempotency-keys", action="store_true", help="send an Idempotency-Key with every POST")
    p.add_argument("--seed", type=int, default=None, help="workload seed (default: random, printed)")
    p.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where the JSON and PNG go (default: bench/results)",
    )
    p.add_argument("--no-plot", action="store_true", help="write no PNG")
    return p


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        defined = [parse_definition(text) for text in args.variant]
        variants = select(args.variants, defined)
        common = {k: v for text in args.set for k, v in parse_env_pairs(text).items()}
        mix = parse_mix(args.mix)
    except (VariantError, ValueError) as error:
        p.error(str(error))
    if args.settle_only and args.rate:
        p.error("--rate does not apply to --settle-only")
    mode: Mode = "intake-only" if args.intake_only else "settle-only" if args.settle_only else "end-to-end"
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    config = LoadConfig(
        mode=mode,
        accounts=args.accounts,
        duration_s=args.duration,
        warmup_s=args.warmup,
        rate=args.rate,
        concurrency=args.concurrency,
        connections=args.connections,
        commands=args.commands,
        drain_timeout_s=args.drain_timeout,
        mix=mix,
        seed=seed,
        idempotency_keys=args.idempotency_keys,
    )
    # The servers' start-up lines would drown the figures; warnings still show.
    configure_logging(Settings(log_level="WARNING"), "bench")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_root = PROJECT_ROOT / ".cache" / "logs" / f"bench-{stamp}"
    runs: dict[str, dict[str, Any]] = {}
    for variant in variants:
        runs[variant.name] = run_variant(variant, common, config, log_root / variant.name, out)
        out.write(variant_block(variant.name, runs[variant.name]) + "\n\n")
        out.flush()
    title = _title(config, variants)
    out.write(f"{title}\n{comparison(runs)}\n")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.results_dir / f"{stamp}.json"
    document = {"title": title, "config": _config_json(config), "common_env": common, "runs": runs}
    json_path.write_text(json.dumps(_finite(document), indent=1) + "\n")
    out.write(f"\nfigures: {json_path}\n")
    if not args.no_plot:
        from bench.plot import plot

        png_path = json_path.with_suffix(".png")
        plot(runs, title, png_path)
        out.write(f"plot:    {png_path}\n")
    out.write(f"logs:    {log_root}\n")
    return 0


def run_variant(
    variant: Variant, common: dict[str, str], config: LoadConfig, log_dir: Path, out: TextIO
) -> dict[str, Any]:
    began = time.monotonic()

    def log(line: str) -> None:
        out.write(f"[bench {variant.name} {time.monotonic() - began:6.1f}s] {line}\n")
        out.flush()

    env = {**common, **variant.env}
    apps = BASE_APPS if config.mode != "end-to-end" else (*BASE_APPS, *SETTLING_APPS)
    log(f"starting servers and {', '.join(apps)} with {env or 'the defaults'}")
    with started_system(log_dir, env, apps) as system:
        log("system ready")
        figures = asyncio.run(drive(system, config, log))
    figures = {
        "variant": variant.name,
        "env": env,
        "mode": config.mode,
        "accounts": config.accounts,
        **figures,
    }
    log("done")
    return figures


def _title(config: LoadConfig, variants: list[Variant]) -> str:
    if config.mode == "settle-only":
        load = f"{config.commands} commands loaded, then drained"
    elif config.rate:
        load = f"open loop {config.rate:g} POST/s"
    else:
        load = f"closed loop, {config.concurrency} in flight"
    measured = "" if config.mode == "settle-only" else f", {config.duration_s:g} s measured"
    return (
        f"ledgerflow bench: {config.mode}, {config.accounts} accounts, {load}{measured}; "
        f"variants {', '.join(v.name for v in variants)}"
    )


def _config_json(config: LoadConfig) -> dict[str, Any]:
    return {**config.__dict__, "mix": dict(config.mix)}


def _finite(value: Any) -> Any:
    """NaN and infinities become null: the JSON stays standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
