"""CPU accounting from /proc/<pid>/stat, on recorded lines and on a fake /proc tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.procstat import ProcStat, cpu_by_name, parse_stat, read_stat, tree_cpu_s


def _line(pid: int, name: str, ppid: int, utime: int, stime: int, cutime: int = 0, cstime: int = 0) -> str:
    # Fields 3.. of a real line: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime priority nice ...
    rest = f"S {ppid} {pid} {pid} 0 -1 4194304 100 0 0 0 {utime} {stime} {cutime} {cstime} 20 0 5 0 123 456"
    return f"{pid} ({name}) {rest}\n"


def test_parse_stat_reads_ppid_and_cpu_in_seconds() -> None:
    stat = parse_stat(_line(42, "python", 7, utime=250, stime=50, cutime=100, cstime=0), ticks=100)
    assert stat == ProcStat(pid=42, ppid=7, own_cpu_s=3.0, reaped_children_cpu_s=1.0)


def test_parse_stat_copes_with_spaces_and_parentheses_in_the_name() -> None:
    stat = parse_stat(_line(9, "tokio-runtime (w) 1", 1, utime=10, stime=10), ticks=100)
    assert stat.pid == 9 and stat.ppid == 1 and stat.own_cpu_s == pytest.approx(0.2)


def test_parse_stat_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        parse_stat("not a stat line")
    with pytest.raises(ValueError):
        parse_stat("12 (x) S 1 2")


def test_tree_cpu_sums_live_descendants_and_reaped_children() -> None:
    stats = {
        1: ProcStat(1, 0, 100.0, 0.0),  # unrelated
        10: ProcStat(10, 1, 2.0, 0.5),  # the root
        11: ProcStat(11, 10, 1.0, 0.0),
        12: ProcStat(12, 11, 0.25, 0.0),
        20: ProcStat(20, 1, 7.0, 0.0),
    }
    assert tree_cpu_s(10, stats) == pytest.approx(3.75)
    assert tree_cpu_s(99, stats) == 0.0


def test_cpu_by_name_on_a_fake_proc(tmp_path: Path) -> None:
    for pid, line in {
        10: _line(10, "bench", 1, 100, 0),
        11: _line(11, "api", 10, 300, 100),
        12: _line(12, "worker", 11, 100, 0),
    }.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(line)
    (tmp_path / "self").mkdir()  # not a pid: ignored
    ticks = os.sysconf("SC_CLK_TCK")
    used = cpu_by_name({"api": 11, "gone": 77}, {"load generator": 10}, proc=tmp_path)
    assert used == {"api": 500 / ticks, "gone": 0.0, "load generator": 100 / ticks}


def test_read_stat_of_this_process() -> None:
    stat = read_stat(os.getpid())
    assert stat is not None and stat.pid == os.getpid() and stat.ppid == os.getppid()
    assert read_stat(2**30) is None
