"""Bad input on each POST: 422 problem+json naming the field, and nothing is published."""

from __future__ import annotations

from typing import Any

import pytest

from infra.settings import Settings
from schemas.topics import DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS
from tests.support.api import ApiUser
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration

BAD_BODIES: list[tuple[str, Any, str]] = [
    ("negative", {"amount": "-5.00"}, "amount"),
    ("zero", {"amount": "0"}, "amount"),
    ("zero with decimals", {"amount": "0.00"}, "amount"),
    ("nan string", {"amount": "NaN"}, "amount"),
    ("infinity string", {"amount": "Infinity"}, "amount"),
    ("exponent string", {"amount": "1e400"}, "amount"),
    ("too many decimals", {"amount": "10.001"}, "amount"),
    ("over the maximum", {"amount": "1000000.01"}, "amount"),
    ("json float", {"amount": 10.5}, "amount"),
    ("json integer", {"amount": 10}, "amount"),
    ("boolean", {"amount": True}, "amount"),
    ("array", {"amount": ["1"]}, "amount"),
    ("object", {"amount": {"value": "1"}}, "amount"),
    ("null", {"amount": None}, "amount"),
    ("empty string", {"amount": ""}, "amount"),
    ("spaces", {"amount": " 10 "}, "amount"),
    ("missing field", {}, "amount"),
    ("unknown field", {"amount": "10", "account_id": "someone-else"}, "account_id"),
    ("body is a list", ["10"], "body"),
    ("body is a string", "10", "body"),
]


@pytest.mark.parametrize("path", ["/v1/deposits", "/v1/withdrawals"])
@pytest.mark.parametrize(("case", "body", "field"), BAD_BODIES, ids=[c for c, _, _ in BAD_BODIES])
async def test_bad_body_is_422_problem_naming_the_field(
    user: ApiUser, path: str, case: str, body: Any, field: str
) -> None:
    response = await user.post(path, body)
    assert response.status_code == 422, (case, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422 and problem["title"]
    assert field in [e["field"] for e in problem["errors"]], problem


async def test_non_json_bodies_are_422(user: ApiUser) -> None:
    for raw in (b"amount=10", b'{"amount": NaN}', b'{"amount": 1e400}', b"{", b""):
        response = await user.client.post(
            "/v1/deposits", content=raw, headers={**user.auth, "content-type": "application/json"}
        )
        assert response.status_code == 422, (raw, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_nothing_was_published_for_bad_input(user: ApiUser, settings: Settings) -> None:
    for _, body, _ in BAD_BODIES:
        assert (await user.post("/v1/deposits", body)).status_code == 422
        assert (await user.post("/v1/withdrawals", body)).status_code == 422
    for topic in (DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS):
        assert await read_topic(settings.kafka_bootstrap_servers, topic, user.account_id) == []
