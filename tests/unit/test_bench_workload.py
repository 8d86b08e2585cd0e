"""The benchmark's workload: the mix, and the books that keep debits covered; the request counter's
process names; the HTTP client's header parsing."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from bench.http import _header
from bench.workload import DEFAULT_MIX, ORDER_TENTHS, Workload, parse_mix
from infra.dynamo.request_stats import service_name


def test_parse_mix_normalises_and_zeroes_what_is_left_out() -> None:
    assert parse_mix("deposit=3,buy=1") == {"deposit": 0.75, "withdrawal": 0.0, "buy": 0.25, "sell": 0.0}


@pytest.mark.parametrize(
    "text", ["", "deposit=0", "deposit", "loan=1", "deposit=-1", "deposit=x", "deposit=nan"]
)
def test_parse_mix_refuses_bad_mixes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_mix(text)


def test_a_fresh_account_can_only_deposit() -> None:
    workload = Workload(1, random.Random(1))
    assert {workload.plan(0).kind for _ in range(20)} == {"deposit"}


def test_gated_plans_never_spend_more_than_settled() -> None:
    """Settling every command as it is planned (the best case), the books never go negative and every
    kind of the mix gets sent."""
    workload = Workload(3, random.Random(7), DEFAULT_MIX)
    kinds: Counter[str] = Counter()
    for _ in range(3000):
        planned = workload.plan(workload.next_account())
        kinds[planned.kind] += 1
        book = workload.books[planned.account]
        assert book.cash >= 0 and all(units >= 0 for units in book.units.values())
        workload.settle(planned, True)
    assert set(kinds) == {"deposit", "withdrawal", "buy", "sell"}


def test_reservations_are_given_back_on_rejection() -> None:
    workload = Workload(1, random.Random(3), {"deposit": 0, "withdrawal": 0, "buy": 1, "sell": 0})
    deposit = workload.plan(0)
    workload.settle(deposit, True)
    buy = workload.plan(0)
    assert buy.kind == "buy" and workload.books[0].cash == 0
    workload.settle(buy, False)
    assert workload.books[0].cash == 200
    buy = workload.plan(0)
    workload.settle(buy, True)
    assert workload.books[0].units[buy.asset or ""] == ORDER_TENTHS


def test_bodies_are_what_the_api_takes() -> None:
    workload = Workload(1, random.Random(5), gated=False)
    bodies = {p.kind: json.loads(p.body) for p in (workload.plan(0) for _ in range(200))}
    assert bodies["deposit"] == {"amount": "2.00"}
    assert bodies["withdrawal"] == {"amount": "1.00"}
    assert bodies["buy"]["quantity"] == "0.2" and bodies["buy"]["type"] == "market"
    assert bodies["sell"]["side"] == "sell"


def test_ungated_plans_follow_the_mix_blindly() -> None:
    workload = Workload(2, random.Random(5), gated=False)
    assert len({workload.plan(workload.next_account()).kind for _ in range(200)}) == 4
    assert workload.books[0].cash == 0


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["/x/faststream/__main__.py", "run", "consumers.ledger.app:app"], "ledger"),
        (["/x/uvicorn/__main__.py", "api.app:create_app", "--factory"], "api"),
        (["/x/faststream/__main__.py", "run", "producers.prices.app:app"], "producers"),
        (["/usr/bin/ledgerflow", "reconcile"], "ledgerflow"),
        ([], "process"),
    ],
)
def test_request_stats_service_names(argv: list[str], name: str) -> None:
    assert service_name(argv) == name


def test_header_lookup_in_a_lowered_head() -> None:
    head = b"http/1.1 202 accepted\r\ncontent-length: 12\r\nconnection: keep-alive\r\n\r\n"
    assert _header(head, b"content-length") == b"12"
    assert _header(head, b"connection") == b"keep-alive"
    assert _header(head, b"transfer-encoding") is None
