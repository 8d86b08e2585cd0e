"""The durable local runtime's pure parts: restart decisions, settings, control folder, object store."""

from __future__ import annotations

import os
import signal
import threading
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

import pytest

from infra.local import objectstore
from infra.local.config import DEFAULT_DATA_DIR, LocalConfig, LocalConfigError
from infra.local.control import ControlFolder, RunnerInfo, pid_alive
from infra.local.objectstore import FileObjectStore, S3Error, list_objects_v2, remove_leftovers
from infra.local.run import stopped_on_purpose

INFO = RunnerInfo(
    pid=1234, apps=("api", "ledger"), servers=("tansu",), api_url="http://x", data_dir="/d", durable=True
)


@pytest.mark.parametrize(
    ("returncode", "marked", "on_purpose"),
    [
        (-signal.SIGTERM, False, True),  # SIGTERM, whoever sent it
        (0, False, True),  # FastStream / uvicorn exit 0 after a graceful SIGTERM
        (1, False, False),  # a crash
        (-signal.SIGKILL, False, False),  # killed: the chaos suite, the OOM killer
        (-signal.SIGKILL, True, True),  # `ledgerflow local stop` had to SIGKILL it
        (1, True, True),
    ],
)
def test_only_crashes_are_restarted(returncode: int, marked: bool, on_purpose: bool) -> None:
    assert stopped_on_purpose(returncode, marked=marked) is on_purpose


def test_local_config_defaults_and_overrides(tmp_path: Path) -> None:
    default = LocalConfig.from_env({})
    assert (default.kafka_port, default.dynamodb_port, default.redis_port) == (9092, 8000, 6379)
    assert default.data_dir == DEFAULT_DATA_DIR and default.durable
    assert default.control_dir == DEFAULT_DATA_DIR / "run"
    custom = LocalConfig.from_env(
        {
            "LEDGERFLOW_LOCAL_KAFKA_PORT": "19092",
            "LEDGERFLOW_LOCAL_OBJECTSTORE_PORT": "19093",
            "LEDGERFLOW_LOCAL_DATA_DIR": str(tmp_path),
            "LEDGERFLOW_LOCAL_STORAGE": "memory",
        }
    )
    assert (custom.kafka_port, custom.objectstore_port, custom.data_dir) == (19092, 19093, tmp_path)
    assert not custom.durable


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LEDGERFLOW_LOCAL_REDIS_PORT", "abc"),
        ("LEDGERFLOW_LOCAL_REDIS_PORT", "70000"),
        ("LEDGERFLOW_LOCAL_STORAGE", "disk"),
    ],
)
def test_local_config_refuses_bad_values(name: str, value: str) -> None:
    with pytest.raises(LocalConfigError, match=name):
        LocalConfig.from_env({name: value})


def test_one_runner_per_control_folder_and_what_operators_see(tmp_path: Path) -> None:
    runner = ControlFolder(tmp_path / "run")
    operator = ControlFolder(tmp_path / "run")
    assert operator.runner() is None and not operator.runner_active()
    assert runner.claim()
    assert not ControlFolder(tmp_path / "run").claim(), "a second `make run` must be refused"
    runner.mark_stopped("ledger")  # left over from a previous run
    runner.begin(INFO)
    assert not operator.is_stopped("ledger"), "a fresh run starts everything"
    assert operator.runner() == INFO
    runner.record_pid("ledger", 4321)
    assert operator.pid("ledger") == 4321
    operator.mark_stopped("ledger")
    assert runner.is_stopped("ledger")
    operator.clear_stopped("ledger")
    runner.record_pid("ledger", None)
    assert operator.pid("ledger") is None
    runner.end()
    assert operator.runner() is None and not operator.runner_active()
    assert ControlFolder(tmp_path / "run").claim(), "the lock is free again"


def test_pid_alive_sees_this_process_and_not_a_free_pid() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(2**22 + 1)  # above Linux's pid_max


def test_object_store_conditional_writes(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path, fsync=False)
    store.create_bucket("b")
    first = store.put("b", "a/watermark.json", b"1", if_none_match="*", if_match=None)
    # Tansu finds its state after a restart by a create that fails.
    with pytest.raises(S3Error) as exists:
        store.put("b", "a/watermark.json", b"0", if_none_match="*", if_match=None)
    assert exists.value.status == HTTPStatus.PRECONDITION_FAILED
    second = store.put("b", "a/watermark.json", b"2", if_none_match=None, if_match=first)
    assert second != first
    with pytest.raises(S3Error):
        store.put("b", "a/watermark.json", b"3", if_none_match=None, if_match=first)  # lost the race
    assert (tmp_path / "b" / "a" / "watermark.json").read_bytes() == b"2"
    with pytest.raises(S3Error):
        store.path("b", "../escape")


def test_object_store_lists_like_s3(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path, fsync=False)
    store.create_bucket("b")
    for key in ("t/p/0/records/002.batch", "t/p/0/records/001.batch", "t/p/0/watermark.json", "t/p/1/w.json"):
        store.put("b", key, b"x", if_none_match=None, if_match=None)
    (tmp_path / "b" / "t" / "p" / "0" / ".tmp-leftover").write_bytes(b"half")

    def listed(query: str) -> tuple[list[str], list[str], str | None]:
        root = ElementTree.fromstring(list_objects_v2(store, "b", parse_qs(query)))
        ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
        keys = [k.text or "" for k in root.findall("s3:Contents/s3:Key", ns)]
        prefixes = [p.text or "" for p in root.findall("s3:CommonPrefixes/s3:Prefix", ns)]
        token = root.find("s3:NextContinuationToken", ns)
        return keys, prefixes, None if token is None else token.text

    assert listed("prefix=t/p/0/records/")[0] == ["t/p/0/records/001.batch", "t/p/0/records/002.batch"]
    assert listed("prefix=t/p/0/records/&start-after=t/p/0/records/001.batch")[0] == [
        "t/p/0/records/002.batch"
    ]
    assert listed("prefix=t/p/&delimiter=/")[:2] == ([], ["t/p/0/", "t/p/1/"])
    keys, _, token = listed("prefix=t/&max-keys=2")
    assert len(keys) == 2 and token is not None
    assert listed(f"prefix=t/&continuation-token={token}")[0] == ["t/p/0/watermark.json", "t/p/1/w.json"]
    assert remove_leftovers(tmp_path) == 1


def test_object_store_listing_follows_its_writes_and_changes_made_behind_its_back(tmp_path: Path) -> None:
    # Listings are kept in memory (Tansu lists a partition's every batch on each fetch).
    store = FileObjectStore(tmp_path, fsync=False)
    store.create_bucket("b")

    def listed() -> list[tuple[str, int, str]]:
        return [(info.key, info.size, info.etag) for info in store.objects("b", "r/")]

    store.put("b", "r/002.batch", b"x", if_none_match=None, if_match=None)
    assert [key for key, _, _ in listed()] == ["r/002.batch"]  # the folder is now kept
    store.put("b", "r/001.batch", b"x", if_none_match=None, if_match=None)
    etag = store.put("b", "r/002.batch", b"longer", if_none_match=None, if_match=None)
    assert listed()[1] == ("r/002.batch", 6, etag)
    store.delete("b", "r/001.batch")
    assert [key for key, _, _ in listed()] == ["r/002.batch"]
    # Someone else (a person, a restore) changed the folder: its mtime says so, and it is read again.
    folder = tmp_path / "b" / "r"
    (folder / "003.batch").write_bytes(b"xyz")
    os.utime(folder, ns=(0, 1))
    assert [key for key, _, _ in listed()] == ["r/002.batch", "r/003.batch"]
    assert store.objects("b", "r/00")[1].size == 3  # a partial prefix
    assert store.objects("b", "missing/") == []


def test_a_listing_read_while_a_batch_is_written_never_hides_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder read just before a write's rename, and kept just after it, in one tick of the file
    system's clock: the kept listing must not hide the new object from every later listing (it once hid
    an acknowledged command from the consumers for good)."""
    store = FileObjectStore(tmp_path, fsync=False)
    store.create_bucket("b")
    store.put("b", "r/001.batch", b"x", if_none_match=None, if_match=None)
    folder = tmp_path / "b" / "r"
    stamp_before_write = folder.stat().st_mtime_ns
    scanned, written = threading.Event(), threading.Event()
    real_scandir = objectstore.os.scandir

    def slow_scandir(path: Any) -> Any:
        entries = list(real_scandir(path))  # what the folder held when it was read
        scanned.set()
        written.wait(timeout=0.5)  # the write lands now, if the reading lets it

        class Snapshot(list[Any]):
            def __enter__(self) -> Snapshot:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

        return Snapshot(entries)

    monkeypatch.setattr(objectstore.os, "scandir", slow_scandir)
    reading = threading.Thread(target=store.objects, args=("b", "r/"))
    reading.start()
    assert scanned.wait(timeout=5)

    def write() -> None:
        store.put("b", "r/002.batch", b"x", if_none_match=None, if_match=None)
        written.set()

    writing = threading.Thread(target=write)
    writing.start()
    writing.join(timeout=5)
    # A coarse clock: the write left the folder's stamp where the reading found it.
    os.utime(folder, ns=(stamp_before_write, stamp_before_write))
    reading.join(timeout=5)
    monkeypatch.setattr(objectstore.os, "scandir", real_scandir)
    assert [info.key for info in store.objects("b", "r/")] == ["r/001.batch", "r/002.batch"]
