"""CPU time of processes, read from /proc/<pid>/stat (Linux): user + system time, children included."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    # utime + stime of the process (all its threads), and cutime + cstime of its reaped children, seconds.
    own_cpu_s: float
    reaped_children_cpu_s: float


def parse_stat(text: str, ticks: int = CLOCK_TICKS) -> ProcStat:
    """One /proc/<pid>/stat line. The command name (field 2) may hold spaces and parentheses, so the
    fields are counted from the last `)`."""
    head, _, rest = text.rpartition(")")
    if not head or "(" not in head:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    pid = int(head.split("(", 1)[0])
    fields = rest.split()
    # After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    if len(fields) < 15:
        raise ValueError(f"too few fields in /proc/{pid}/stat")
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ProcStat(pid, ppid, (utime + stime) / ticks, (cutime + cstime) / ticks)


def read_stat(pid: int, proc: Path = Path("/proc")) -> ProcStat | None:
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (OSError, ValueError):
        return None  # gone, or not readable


def all_stats(proc: Path = Path("/proc")) -> dict[int, ProcStat]:
    found = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name), proc)
            if stat is not None:
                found[stat.pid] = stat
    return found


def tree_cpu_s(root: int, stats: Mapping[int, ProcStat]) -> float:
    """CPU seconds of `root` and its live descendants, plus what its reaped children used."""
    if root not in stats:
        return 0.0
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    used = stats[root].reaped_children_cpu_s
    pending = [root]
    while pending:
        pid = pending.pop()
        used += stats[pid].own_cpu_s
        pending.extend(children.get(pid, []))
    return used


def cpu_by_name(
    trees: Mapping[str, int], singles: Mapping[str, int] | None = None, proc: Path = Path("/proc")
) -> dict[str, float]:
    """CPU seconds used so far by each named process tree in `trees`, and by each process in `singles`
    alone (the benchmark itself: its descendants are the measured servers and apps)."""
    stats = all_stats(proc)
    used = {name: tree_cpu_s(pid, stats) for name, pid in trees.items()}
    for name, pid in (singles or {}).items():
        stat = stats.get(pid)
        used[name] = stat.own_cpu_s if stat is not None else 0.0
    return used
