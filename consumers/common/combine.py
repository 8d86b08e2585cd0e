"""One settlement for a whole fetch: the runs that a fetch's partitions hand in together are settled by one
call, so a fetch costs one read and one write of the store, not one of each per partition.

Each partition is still processed by its own task, in order (`process_partition`): it parses, gates and
dead-letters its records itself, and hands each run of plainly admitted records to this object as if it
were the settlement. A run waits until every partition of the fetch has either handed in its run or
finished; then all the waiting runs are settled together, and each task goes on with its result (or the
exception, after which each falls back to its own record-by-record path). One account's records all
come from one partition, so each account's commands keep their order in the combined batch.

A partition busy with something slower (a parked record's write, a redriven record's attempts) holds the
others back at most `max_wait_s`; then whatever runs are waiting are settled without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from consumers.common.settle import Inbound

SettleBatch = Callable[[Sequence[Inbound]], Awaitable[object]]
DEFAULT_MAX_WAIT_S: Final = 0.05


class CombinedSettle:
    def __init__(self, settle: SettleBatch, partitions: int, max_wait_s: float = DEFAULT_MAX_WAIT_S) -> None:
        self._settle = settle
        self._open = partitions
        self._max_wait_s = max_wait_s
        self._waiting: list[tuple[Sequence[Inbound], asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, inbound: Sequence[Inbound]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((inbound, done))
        if len(self._waiting) >= self._open:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_wait_s, self._flush)
        await done

    def partition_done(self) -> None:
        """A partition has no more records to hand in: the others need not wait for it."""
        self._open -= 1
        if self._waiting and len(self._waiting) >= self._open:
            self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if not batch:
            return
        task = asyncio.create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[Sequence[Inbound], asyncio.Future[None]]]) -> None:
        try:
            await self._settle([message for inbound, _ in batch for message in inbound])
        except BaseException as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
