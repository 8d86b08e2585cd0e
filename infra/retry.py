"""Transient faults are retried with capped exponential backoff, for as long as they last."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

log = structlog.get_logger(__name__)

T = TypeVar("T")

_TRANSIENT_DYNAMO_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    EndpointConnectionError,
    ConnectionClosedError,
    ReadTimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return (
            code in _TRANSIENT_DYNAMO_CODES
            or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
        )
    return isinstance(exc, _TRANSIENT_TYPES)


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    initial_backoff_s: float = 0.1,
    max_backoff_s: float = 5.0,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Runs an idempotent operation until it succeeds or fails for a reason that is not transient;
    `on_retry` is called before each wait (the consumers count them)."""
    backoff = initial_backoff_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("retry.transient", error=type(exc).__name__, detail=str(exc)[:200], attempt=attempt)
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, max_backoff_s)
