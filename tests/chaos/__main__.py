"""`python -m tests.chaos [--commands N --accounts N --kills N ...]`: prints the figures, exits 1 on failure.

Every flag also reads an environment variable (`CHAOS_COMMANDS`, `CHAOS_ACCOUNTS`, `CHAOS_KILLS`,
`CHAOS_SERVER_KILLS`, `CHAOS_API_KILLS`, `CHAOS_CONCURRENCY`, `CHAOS_SEED`), so CI can size the run without editing the Makefile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from tests.chaos.suite import ChaosConfig, Figures, run


def _env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else default


def parse_args(argv: list[str] | None = None) -> ChaosConfig:
    defaults = ChaosConfig()
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--commands", type=int, default=_env_int("CHAOS_COMMANDS", defaults.commands))
    parser.add_argument("--accounts", type=int, default=_env_int("CHAOS_ACCOUNTS", defaults.accounts))
    parser.add_argument("--kills", type=int, default=_env_int("CHAOS_KILLS", defaults.kills))
    parser.add_argument(
        "--concurrency", type=int, default=_env_int("CHAOS_CONCURRENCY", defaults.concurrency)
    )
    parser.add_argument(
        "--server-kills", type=int, default=_env_int("CHAOS_SERVER_KILLS", defaults.server_kills)
    )
    parser.add_argument("--api-kills", type=int, default=_env_int("CHAOS_API_KILLS", defaults.api_kills))
    parser.add_argument("--seed", type=int, default=_env_int("CHAOS_SEED", None))
    args = parser.parse_args(argv)
    if args.commands < 1 or args.accounts < 1 or args.concurrency < 1:
        parser.error("--commands, --accounts and --concurrency must be >= 1")
    if min(args.kills, args.server_kills, args.api_kills) < 0:
        parser.error("--kills, --server-kills and --api-kills must be >= 0")
    return ChaosConfig(
        commands=args.commands,
        accounts=args.accounts,
        kills=args.kills,
        server_kills=args.server_kills,
        api_kills=args.api_kills,
        concurrency=args.concurrency,
        seed=args.seed,
    )


def report(figures: Figures, failures: list[str]) -> str:
    lines = [
        "",
        "chaos figures",
        f"  seed                             {figures.seed}",
        f"  trading commands included        {'yes' if figures.trading_included else 'no'}",
        f"  accounts                         {figures.accounts}",
        f"  commands sent (202)              {figures.commands_sent}  {json.dumps(figures.by_kind)}",
        f"  refused at intake (not sent)     {sum(figures.refused_at_intake.values())}  "
        f"{json.dumps(figures.refused_at_intake)}",
        f"  settled / rejected               {figures.settled} / {figures.rejected}",
        f"  consumer kills (SIGKILL)         {figures.kills}",
        f"  server kills (SIGKILL, restart)  {figures.server_kills}  recovery s {json.dumps(figures.server_recovery_s)}",
        f"  API kills (SIGKILL, restart)     {figures.api_kills}  {json.dumps(figures.killed)}",
        f"  intake retries (same key)        {figures.intake_retries}",
        f"  replays executed                 {figures.replays}",
        f"  without a terminal status        {figures.without_terminal_status}",
        f"  duplicated event ids             {figures.duplicated_event_ids}",
        f"  accounts differing from model    {figures.accounts_mismatched}",
        f"  ledgerflow reconcile exit code   {figures.reconcile_exit}",
        f"  duration                         {figures.duration_s} s  {json.dumps(figures.phases)}",
    ]
    lines.extend(f"  problem: {p}" for p in figures.problems)
    lines.append("FAILED: " + "; ".join(failures) if failures else "PASSED")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    figures = run(config)
    failures = figures.failures(config)
    print(report(figures, failures))
    print("figures: " + json.dumps(asdict(figures), default=str))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
