"""Configurations run side by side: each is a name and the environment overrides the apps get.

A new setting to compare (as `LEDGERFLOW_SETTLE_MODE` is compared here) needs one line in `VARIANTS`;
`--variant NAME:KEY=VALUE;KEY=VALUE` defines one on the command line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True)
class Variant:
    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


VARIANTS: Final[Mapping[str, Variant]] = {
    v.name: v
    for v in (
        Variant(
            "one",
            {"LEDGERFLOW_SETTLE_MODE": "one", "LEDGERFLOW_KAFKA_BATCH_MAX_RECORDS": "1"},
            "one command per transaction, one record per fetch",
        ),
        Variant(
            "partition",
            {"LEDGERFLOW_SETTLE_MODE": "partition"},
            "each partition's fetched records settled together, coalesced per account",
        ),
        Variant(
            "batched",
            {},
            "the defaults: a fetch's records (up to 100, all its partitions) settled together, coalesced "
            "per account",
        ),
    )
}
DEFAULT_VARIANTS: Final = ("one", "batched")


class VariantError(ValueError):
    """A variant list or definition that cannot be used (the message says why)."""


def parse_env_pairs(text: str, separator: str = ";") -> dict[str, str]:
    """`KEY=VALUE;KEY=VALUE` -> a dict. Keys must be environment variable names."""
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in text.split(separator)):
        if not item:
            continue
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise VariantError(f"{item!r} is not KEY=VALUE")
        if not (key.replace("_", "a").isalnum() and key.isascii() and not key[0].isdigit()):
            raise VariantError(f"{key!r} is not an environment variable name")
        pairs[key] = value.strip()
    return pairs


def parse_definition(text: str) -> Variant:
    """`NAME:KEY=VALUE;KEY=VALUE` (the env may be empty: `NAME:`) -> a Variant."""
    name, colon, env = text.partition(":")
    name = name.strip()
    if not colon:
        raise VariantError(f"{text!r}: a variant definition is NAME:KEY=VALUE;KEY=VALUE")
    _check_name(name)
    return Variant(name, parse_env_pairs(env), "defined on the command line")


def select(
    names: str, defined: Sequence[Variant] = (), known: Mapping[str, Variant] = VARIANTS
) -> list[Variant]:
    """The variants named in a comma-separated list, in its order, from `known` and `defined` (the latter
    win). At least one; no name twice."""
    table = {**known, **{v.name: v for v in defined}}
    chosen = [part.strip() for part in names.split(",") if part.strip()]
    if not chosen:
        raise VariantError("no variant named")
    seen: set[str] = set()
    for name in chosen:
        if name not in table:
            raise VariantError(f"unknown variant {name!r}; known: {', '.join(sorted(table))}")
        if name in seen:
            raise VariantError(f"variant {name!r} named twice")
        seen.add(name)
    return [table[name] for name in chosen]


def _check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise VariantError(f"{name!r} is not a variant name (letters, digits, - _ .)")
