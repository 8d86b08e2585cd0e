"""Where `make run` puts its servers and data: every `LEDGERFLOW_LOCAL_*` variable is read here.

The defaults are the contract's ports and the project's `.data/` folder. Tests and a second `make run`
override them to run beside the first one.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from infra.local.install import PROJECT_ROOT
from infra.local.services import DYNAMODB_JAVA_OPTS

DEFAULT_DATA_DIR: Final = PROJECT_ROOT / ".data"
# The control folder `make run` and `ledgerflow local` share (see infra/local/control.py).
CONTROL_SUBDIR: Final = "run"
_PREFIX: Final = "LEDGERFLOW_LOCAL_"


class LocalConfigError(ValueError):
    """A `LEDGERFLOW_LOCAL_*` variable has a value we cannot use."""


@dataclass(frozen=True)
class LocalConfig:
    kafka_port: int = 9092
    dynamodb_port: int = 8000
    redis_port: int = 6379
    # Tansu's durable storage: the local S3-compatible object server (infra/local/objectstore.py).
    objectstore_port: int = 9093
    data_dir: Path = DEFAULT_DATA_DIR
    # False: every server keeps its data in memory only, as the test fixtures do.
    durable: bool = True
    dynamodb_java_opts: tuple[str, ...] = DYNAMODB_JAVA_OPTS

    @property
    def control_dir(self) -> Path:
        return self.data_dir / CONTROL_SUBDIR

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocalConfig:
        env = os.environ if environ is None else environ
        defaults = cls()
        data_dir = env.get(f"{_PREFIX}DATA_DIR", "").strip()
        storage = env.get(f"{_PREFIX}STORAGE", "durable").strip().lower()
        if storage not in {"durable", "memory"}:
            raise LocalConfigError(f"{_PREFIX}STORAGE must be 'durable' or 'memory', not {storage!r}")
        return cls(
            kafka_port=_port(env, "KAFKA_PORT", defaults.kafka_port),
            dynamodb_port=_port(env, "DYNAMODB_PORT", defaults.dynamodb_port),
            redis_port=_port(env, "REDIS_PORT", defaults.redis_port),
            objectstore_port=_port(env, "OBJECTSTORE_PORT", defaults.objectstore_port),
            data_dir=Path(data_dir).resolve() if data_dir else defaults.data_dir,
            durable=storage == "durable",
            dynamodb_java_opts=java_opts(env) or defaults.dynamodb_java_opts,
        )


def java_opts(env: Mapping[str, str]) -> tuple[str, ...]:
    """`LEDGERFLOW_LOCAL_DYNAMODB_JAVA_OPTS` split as a shell would; empty when unset."""
    text = env.get(f"{_PREFIX}DYNAMODB_JAVA_OPTS", "")
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise LocalConfigError(f"{_PREFIX}DYNAMODB_JAVA_OPTS cannot be split into options: {exc}") from exc


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(f"{_PREFIX}{name}", "").strip()
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise LocalConfigError(f"{_PREFIX}{name} must be a TCP port (1-65535), not {text!r}")
    return int(text)
