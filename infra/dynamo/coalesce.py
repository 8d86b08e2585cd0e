"""Stating per-command money rules on a coalesced write."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal


def least_start(changes: Iterable[Decimal]) -> Decimal:
    """The least starting amount from which applying `changes` in order never goes below zero.

    One write replaces a run of commands, each of which needed `amount >= debit` when applied; the
    coalesced write states them all as one condition on the amount it starts from.
    """
    running = least = Decimal(0)
    for step in changes:
        if step < 0:
            least = max(least, -step - running)
        running += step
    return least
