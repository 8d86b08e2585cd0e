"""Bounded attempts for unexpected handler failures; transient faults stay unbounded (infra.retry)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from consumers.common import metrics
from infra.retry import retry_transient

log = structlog.get_logger(__name__)
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class HandlerGaveUp(Exception):
    """The handler failed `attempts` times for a reason no waiting fixes: set the message aside."""

    def __init__(self, attempts: int, cause: Exception) -> None:
        super().__init__(f"gave up after {attempts} attempt(s): {type(cause).__name__}: {cause}")
        self.attempts = attempts
        self.cause = cause

    @property
    def summary(self) -> str:
        return f"{type(self.cause).__name__}: {self.cause}"[:2000]


async def attempt_bounded(
    operation: Callable[[], Awaitable[T]],
    *,
    max_attempts: int,
    initial_backoff_s: float,
    max_backoff_s: float,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Runs `operation`; a transient fault is waited out inside one attempt and never counted, any other
    exception counts as a failed attempt, and after `max_attempts` of those `HandlerGaveUp` is raised."""
    backoff = initial_backoff_s
    for attempt in range(1, max_attempts + 1):
        try:
            return await retry_transient(
                operation,
                initial_backoff_s=initial_backoff_s,
                max_backoff_s=max_backoff_s,
                on_retry=_transient,
            )
        except Exception as exc:
            metrics.count_retry("handler_error")
            log.warning(
                "handler.failed",
                attempt=attempt,
                max_attempts=max_attempts,
                error=type(exc).__name__,
                detail=str(exc)[:200],
                exc_info=attempt == max_attempts,
            )
            if attempt == max_attempts:
                raise HandlerGaveUp(attempt, exc) from exc
            await sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, max_backoff_s)
    raise AssertionError("unreachable: max_attempts >= 1")


def _transient() -> None:
    metrics.count_retry("transient")
