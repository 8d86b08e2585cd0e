"""Variant lists and definitions for `python -m bench`, and its argument checks."""

from __future__ import annotations

import pytest

from bench.__main__ import parser
from bench.variants import VARIANTS, Variant, VariantError, parse_definition, parse_env_pairs, select


def test_known_variants_compare_one_at_a_time_with_the_default() -> None:
    assert VARIANTS["one"].env == {"LEDGERFLOW_SETTLE_MODE": "one", "LEDGERFLOW_KAFKA_BATCH_MAX_RECORDS": "1"}
    assert VARIANTS["batched"].env == {}


def test_select_keeps_the_order_given() -> None:
    assert [v.name for v in select("batched, one")] == ["batched", "one"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("", "no variant"),
        ("one,nope", "unknown variant 'nope'"),
        ("one,one", "named twice"),
        (" , ", "no variant"),
    ],
)
def test_select_refuses_bad_lists(names: str, message: str) -> None:
    with pytest.raises(VariantError, match=message):
        select(names)


def test_a_defined_variant_can_be_selected_and_overrides_a_known_one() -> None:
    big = parse_definition("big:LEDGERFLOW_KAFKA_BATCH_MAX_RECORDS=500; LEDGERFLOW_X = y")
    assert big == Variant(
        "big", {"LEDGERFLOW_KAFKA_BATCH_MAX_RECORDS": "500", "LEDGERFLOW_X": "y"}, big.description
    )
    plain = parse_definition("one:")
    chosen = select("one,big", [big, plain])
    assert chosen[0].env == {} and chosen[1] is big


@pytest.mark.parametrize("text", ["noenv", ":A=1", "bad name:A=1", "x:A", "x:=1", "x:1A=2", "x:A-B=1"])
def test_bad_definitions_are_refused(text: str) -> None:
    with pytest.raises(VariantError):
        parse_definition(text)


def test_env_pairs_allow_empty_values_and_trailing_separators() -> None:
    assert parse_env_pairs("A=1;B=;") == {"A": "1", "B": ""}


@pytest.mark.parametrize(
    "argv",
    [
        ["--variants", "one,nope"],
        ["--duration", "0"],
        ["--rate", "-5"],
        ["--warmup", "-1"],
        ["--accounts", "x"],
        ["--intake-only", "--settle-only"],
        ["--mix", "deposit=1,teleport=2"],
        ["--variant", "broken"],
        ["--settle-only", "--rate", "10"],
    ],
)
def test_bad_flags_exit_with_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from bench.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_help_lists_every_variant() -> None:
    text = parser().format_help()
    assert all(name in text for name in VARIANTS)
    assert "--intake-only" in text and "--settle-only" in text
