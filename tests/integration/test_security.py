"""Authentication, authorisation, isolation, limits and headers, attacked from outside."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest
from redis.asyncio import Redis

from infra.dynamo.accounts import DynamoAccounts
from infra.dynamo.client import dynamodb_client
from infra.settings import Settings
from tests.conftest import RunningSystem
from tests.support.api import PASSWORD, ApiUser, register

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("username", "password", "field"),
    [
        ("ok_name", "short1!", "password"),
        ("ok_name", "onlyletterslong", "password"),
        ("ok_name", "1234567890", "password"),
        ("ok_name", "aaaaaaaaaa1", "password"),
        ("ok_name", "x" * 70 + "é1", "password"),  # 73 bytes: past bcrypt's limit
        ("ok_name", "pass\x00word12", "password"),
        ("ok_name", "pass\u200bword12", "password"),
        ("ok_name", "my-ok_name-is-secret1", "body"),
        ("\u0430lice", PASSWORD, "username"),  # a Cyrillic "a": a confusable
        ("al", PASSWORD, "username"),
        ("a" * 33, PASSWORD, "username"),
        ("bob smith", PASSWORD, "username"),
        ("bob\x00", PASSWORD, "username"),
        ("'; DROP TABLE users;--", PASSWORD, "username"),
        ("${jndi:ldap://x/a}", PASSWORD, "username"),
    ],
)
async def test_registration_policy(http: httpx.AsyncClient, username: str, password: str, field: str) -> None:
    response = await http.post("/v1/auth/register", json={"username": username, "password": password})
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_a_taken_name_is_409_whatever_its_case(http: httpx.AsyncClient, user: ApiUser) -> None:
    again = await http.post(
        "/v1/auth/register", json={"username": user.username.upper(), "password": PASSWORD}
    )
    assert again.status_code == 409


async def test_login_does_not_reveal_whether_a_name_exists(http: httpx.AsyncClient, user: ApiUser) -> None:
    wrong = await http.post(
        "/v1/auth/login", json={"username": user.username, "password": "wrong-password-1"}
    )
    unknown = await http.post(
        "/v1/auth/login", json={"username": f"nobody_{uuid.uuid4().hex[:8]}", "password": "x"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def _forge(
    claims: dict[str, object],
    secret: str = "not-the-secret-but-long-enough-for-hs256-0123",
    alg: str = "HS256",
) -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def _unsigned(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_forged_tampered_and_expired_tokens_are_401(
    http: httpx.AsyncClient, user: ApiUser, settings: Settings
) -> None:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": user.account_id,
        "role": "admin",
        "jti": "x",
        "iat": now,
        "exp": now + 600,
    }
    secret = settings.jwt_secret.get_secret_value()
    header, payload, signature = user.token.split(".")
    tampered_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered_payload["role"] = "admin"
    tampered = ".".join(
        [
            header,
            base64.urlsafe_b64encode(json.dumps(tampered_payload).encode()).decode().rstrip("="),
            signature,
        ]
    )
    tokens = {
        "alg none": _unsigned(claims),
        "other secret": _forge(claims),
        "tampered role": tampered,
        "expired": _forge({**claims, "exp": now - 10, "role": "customer"}, secret),
        "no jti": _forge({k: v for k, v in claims.items() if k != "jti"}, secret),
        "HS512": _forge(claims, secret, "HS512"),
        "unknown role": _forge({**claims, "role": "root"}, secret),
        "garbage": "not.a.token",
        "spaces": "a b",
    }
    for name, token in tokens.items():
        response = await http.get("/v1/balance", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.headers["content-type"].startswith("application/problem+json")
    basic = await http.get("/v1/balance", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401


async def _promote(settings: Settings, username: str) -> None:
    """As an operator does it: `ledgerflow users promote`."""
    cli = Path(sys.executable).with_name("ledgerflow")
    done = await asyncio.to_thread(
        subprocess.run, [str(cli), "users", "promote", username], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"{username} is now admin" in done.stdout
    async with dynamodb_client(settings) as client:
        user = await DynamoAccounts(client, settings.dynamodb_table).find_by_username(username)
    assert user is not None and user.role == "admin"


async def test_admin_reads_are_for_admins_only(
    http: httpx.AsyncClient, user: ApiUser, settings: Settings
) -> None:
    command_id = (await user.settle("/v1/deposits", "12.00"))["command_id"]
    customer = await register(http)
    for path in (f"/v1/admin/accounts/{user.account_id}", f"/v1/admin/commands/{command_id}"):
        assert (await customer.get(path)).status_code == 403
        assert (await http.get(path)).status_code == 401
    await _promote(settings, customer.username)
    admin = customer
    login = await http.post("/v1/auth/login", json={"username": admin.username, "password": PASSWORD})
    admin.token = login.json()["access_token"]
    account = (await admin.get(f"/v1/admin/accounts/{user.account_id}")).json()
    assert account["username"] == user.username and account["balance"]["available"] == "12.00"
    command = (await admin.get(f"/v1/admin/commands/{command_id}")).json()
    assert command["account_id"] == user.account_id and command["status"] == "settled"
    assert (await admin.get(f"/v1/admin/commands/{uuid.uuid4()}")).status_code == 404
    # Nothing else is special: an admin's own balance is their own, and others' commands stay 404 there.
    assert await admin.balance() == "0.00"
    assert (await admin.get(f"/v1/commands/{command_id}")).status_code == 404


async def test_command_status_outlives_the_intake_cache(
    http: httpx.AsyncClient, user: ApiUser, settings: Settings
) -> None:
    """With the intake's Redis record gone (a Redis that lost its data), the status of a settled command
    is still the settlement's outcome record: for its owner by key, for an admin through the index."""
    command_id = (await user.settle("/v1/withdrawals", "1.00"))["command_id"]
    before = (await user.get(f"/v1/commands/{command_id}")).json()
    redis = Redis.from_url(settings.redis_url)
    try:
        assert await redis.delete(f"command:{command_id}") == 1
    finally:
        await redis.aclose()
    after = (await user.get(f"/v1/commands/{command_id}")).json()
    assert after == before
    assert after["status"] == "rejected" and after["reason"] == "insufficient_funds"
    assert after["accepted_at"] is not None and after["completed_at"] is not None
    stranger = await register(http)
    assert (await stranger.get(f"/v1/commands/{command_id}")).status_code == 404
    await _promote(settings, stranger.username)
    login = await http.post("/v1/auth/login", json={"username": stranger.username, "password": PASSWORD})
    stranger.token = login.json()["access_token"]
    command = (await stranger.get(f"/v1/admin/commands/{command_id}")).json()
    assert command == {"account_id": user.account_id, **before}


async def test_commands_are_rate_limited_per_user(strict_api: str) -> None:
    async with httpx.AsyncClient(base_url=strict_api, timeout=30) as client:
        user = await register(client)
        codes = [(await user.post("/v1/deposits", {"amount": "1.00"})).status_code for _ in range(7)]
        assert codes[:5] == [202] * 5
        assert codes[5:] == [429, 429]
        refused = await user.post("/v1/deposits", {"amount": "1.00"})
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 31
        # Another user is not affected by the first one's limit.
        other = await register(client)
        assert (await other.post("/v1/deposits", {"amount": "1.00"})).status_code == 202


async def test_login_guessing_is_rate_limited(strict_api: str) -> None:
    async with httpx.AsyncClient(base_url=strict_api, timeout=30) as client:
        user = await register(client)
        codes = []
        for _ in range(5):
            guess = await client.post(
                "/v1/auth/login", json={"username": user.username, "password": "guess-123"}
            )
            codes.append(guess.status_code)
        assert codes[:2] == [401, 401] and codes[-1] == 429
        right = await client.post("/v1/auth/login", json={"username": user.username, "password": PASSWORD})
        assert right.status_code == 429, "the limit holds for the right password too: guessing stays blind"


async def test_oversized_bodies_are_413_and_non_json_is_415(user: ApiUser) -> None:
    big = json.dumps({"amount": "1.00", "pad": "x" * 70_000})
    response = await user.client.post(
        "/v1/deposits", content=big, headers={**user.auth, "content-type": "application/json"}
    )
    assert response.status_code == 413

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 8192

    streamed = await user.client.post(
        "/v1/deposits", content=chunks(), headers={**user.auth, "content-type": "application/json"}
    )
    assert streamed.status_code == 413
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        wrong = await user.client.post(
            "/v1/deposits", content=b'{"amount": "1.00"}', headers={**user.auth, "content-type": content_type}
        )
        assert wrong.status_code == 415, content_type
        assert wrong.headers["content-type"].startswith("application/problem+json")


async def test_security_headers_on_every_response(http: httpx.AsyncClient, user: ApiUser) -> None:
    responses = [
        await http.get("/v1/health/live"),
        await http.get("/v1/balance"),
        await user.get("/v1/balance"),
        await user.get(f"/v1/commands/{uuid.uuid4()}"),
        await user.post("/v1/deposits", {"amount": "-1"}),
        await http.get("/no/such/route"),
    ]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"


async def test_cors_only_for_allowed_origins(strict_api: str) -> None:
    async with httpx.AsyncClient(base_url=strict_api, timeout=30) as client:
        preflight = {
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization",
        }
        allowed = await client.options(
            "/v1/deposits", headers={"origin": "https://app.ledgerflow.example", **preflight}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.ledgerflow.example"
        denied = await client.options("/v1/deposits", headers={"origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in denied.headers
        simple = await client.get("/v1/health/live", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers


async def test_audit_log_and_no_secrets_in_any_log(
    http: httpx.AsyncClient, system: RunningSystem, settings: Settings
) -> None:
    user = await register(http)
    await user.settle("/v1/deposits", "3.00")
    await http.post("/v1/auth/login", json={"username": user.username, "password": "wrong-password-9"})
    await user.post("/v1/auth/logout", None)
    await asyncio.sleep(1)
    records = []
    for line in system.logs().splitlines():
        _, _, raw = line.partition("| ")
        if raw.startswith("{"):
            records.append(json.loads(raw))
    mine = [
        r
        for r in records
        if r.get("audit") and (r.get("username") == user.username or r.get("account_id") == user.account_id)
    ]
    actions = {(r["event"], r["result"]) for r in mine}
    assert {
        ("auth.register", "created"),
        ("auth.login", "ok"),
        ("auth.login", "denied"),
        ("auth.logout", "ok"),
    } <= actions
    assert ("command.accepted", "accepted") in actions and ("command.completed", "settled") in actions
    for record in mine:
        assert record["timestamp"]
        if record["event"].startswith("auth."):
            assert record["client_ip"] == "127.0.0.1"
    everything = system.logs()
    for secret in (PASSWORD, "wrong-password-9", user.token, settings.jwt_secret.get_secret_value()):
        assert secret not in everything
    assert user.token.split(".")[2] not in everything
