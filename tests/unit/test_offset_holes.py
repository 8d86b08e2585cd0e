"""Where a fetch's offsets leave a hole (infra/kafka/holes.py)."""

from __future__ import annotations

import pytest

from infra.kafka.holes import holes


@pytest.mark.parametrize(
    ("expected", "offsets", "missing"),
    [
        (None, [0, 1, 2], []),
        (0, [0, 1, 2], []),
        (None, [4, 5, 8], [6, 7]),
        (3, [5, 6], [3, 4]),
        (3, [3, 5, 7], [4, 6]),
        # Records given again after a seek back open no hole, and do not move the expectation back.
        (10, [7, 8, 9, 10, 11], []),
        (10, [8, 12], [10, 11]),
        (0, [], []),
    ],
)
def test_holes_are_the_offsets_missing_from_the_expected_one_on(
    expected: int | None, offsets: list[int], missing: list[int]
) -> None:
    assert holes(expected, offsets) == missing
