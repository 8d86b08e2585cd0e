"""No input a client can send produces a 5xx: a hand-written battery, then schemathesis on the spec."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.support.api import ApiUser, register

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 30

HOSTILE_VALUES: list[Any] = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e9999",
    "9" * 5000,
    "0." + "1" * 5000,
    ["1.00"],
    {"$gt": ""},
    "1.00\x00",
    "\x00",
    "x" * 60_000,
    "\u0661\u0660\u0660",  # Arabic-Indic digits
    "\uff11\uff10\uff10",  # full-width digits
    "'; DROP TABLE ledgerflow;--",
    "${jndi:ldap://127.0.0.1/a}",
    "<script>alert(1)</script>",
    "{{7*7}}",
    True,
    None,
    -1,
    10**30,
]
RAW_BODIES = [
    b'{"amount": NaN}',
    b'{"amount": Infinity}',
    b'{"amount": 1e9999}',
    b'{"amount": ' + b"9" * 5000 + b"}",
    b'{"amount": "1.00", "amount": "2.00"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"amount": "\\ud800"}',
    b"\xff\xfe\x00",
    b"null",
]


@pytest.mark.parametrize("path", ["/v1/deposits", "/v1/withdrawals", "/v1/auth/register", "/v1/auth/login"])
async def test_hostile_values_never_5xx(user: ApiUser, path: str) -> None:
    fields = ["amount"] if not path.startswith("/v1/auth") else ["username", "password"]
    for field in fields:
        for value in HOSTILE_VALUES:
            body = {f: "valid-Value-123" for f in fields} | {field: value}
            response = await user.post(path, body)
            assert response.status_code < 500, (path, field, repr(value)[:80], response.text[:200])
            assert response.status_code in {200, 201, 401, 409, 413, 422}, (path, field, repr(value)[:80])


async def test_hostile_raw_bodies_never_5xx(user: ApiUser) -> None:
    for raw in RAW_BODIES:
        response = await user.client.post(
            "/v1/deposits", content=raw, headers={**user.auth, "content-type": "application/json"}
        )
        assert response.status_code in {413, 422}, (raw[:40], response.status_code, response.text[:200])


async def test_hostile_paths_queries_and_headers_never_5xx(user: ApiUser) -> None:
    odd = ["%00", "..%2F..%2Fetc%2Fpasswd", "x" * 5000, "'%20OR%201=1", "%F0%9F%92%A9", "%E2%80%AE"]
    for value in odd:
        assert (await user.client.get(f"/v1/commands/{value}", headers=user.auth)).status_code < 500
        transactions = await user.client.get(
            f"/v1/balance/transactions?cursor={value}&limit=5", headers=user.auth
        )
        assert transactions.status_code in {200, 422}
    for limit in ("-1", "0", "101", "abc", "1e3", "9" * 100):
        assert (await user.get("/v1/balance/transactions", limit=limit)).status_code == 422
    for key in (b"", b"x" * 129, b"tab\tkey", "\u00fcn\u00efcode".encode(), b"\xff\xfe", b"\x00"):
        try:
            response = await user.client.post(
                "/v1/deposits", json={"amount": "1.00"}, headers={**user.auth, "Idempotency-Key": key}
            )
        except httpx.LocalProtocolError:
            continue  # the client itself refuses to send such a header
        assert response.status_code in {202, 422}, (repr(key), response.text)
    for header in ("Bearer", "Bearer " + "A" * 10_000, "Bearer a.b.c", "bearer\x7f"):
        try:
            response = await user.client.get("/v1/balance", headers={"Authorization": header})
        except httpx.LocalProtocolError:
            continue
        # A control character in a header is not valid HTTP: the server's parser answers 400 before the
        # app sees it. Anything that reaches the app is a plain authentication failure.
        allowed = {400, 401} if any(ord(c) < 0x20 or ord(c) == 0x7F for c in header) else {401}
        assert response.status_code in allowed, (header[:20], response.status_code)


@pytest.fixture(scope="module")
def bearer(system: Any) -> str:
    async def token() -> str:
        async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as client:
            user = await register(client)
            await user.settle("/v1/deposits", "50.00")
            return user.token

    return asyncio.run(token())


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"]
)
def test_openapi_operations_never_5xx(system: Any, bearer: str, mode: GenerationMode) -> None:
    """Schemathesis generates requests from the app's own OpenAPI document, valid and invalid ones."""
    schema = schemathesis.openapi.from_url(f"{system.api_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    exercised = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/v1/auth/logout":
            continue  # would revoke the shared token mid-run; logout has its own tests
        if operation.path == "/v1/stream":
            continue  # an event stream never ends (heartbeats keep it open); it has its own tests
        operations += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            response = case.call(
                base_url=system.api_url, headers={"Authorization": f"Bearer {bearer}"}, timeout=30
            )
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
                )

        try:
            check()
        except Unsatisfiable:
            # Nothing invalid can be built for an operation without inputs (e.g. GET /v1/health/live).
            assert mode is GenerationMode.NEGATIVE
            continue
        exercised += 1
    assert operations >= 10
    assert exercised >= 8
    assert failures == []
