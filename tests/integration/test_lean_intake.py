"""The lean intake: one Redis round trip per POST (counted), GCRA rate limits on every route."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import httpx
import pytest
from aiokafka.structs import RecordMetadata, TopicPartition
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from api.app import create_app
from api.gate import Gate, Limit
from api.idempotency import IdempotencyStore
from api.live.announce import Announcer
from api.live.hub import LiveHub
from api.live.tickets import StreamTickets
from api.problems import ProblemError
from api.resources import Resources
from api.revocation import LOADED_MARKER, TokenDenylist, denylist_key
from api.security import issue_token
from infra.dynamo.idempotency_records import IdempotencyRecord
from infra.settings import Settings
from producers.commands import CommandPublisher
from tests.support.api import ApiUser, register

pytestmark = pytest.mark.integration


class CountingConnection(Connection):
    """Counts what is sent to Redis: one send per command, per pipeline, per script call."""

    sends = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        await super().send_packed_command(command, check_health)


@dataclass
class FakeBackends:
    published: list[bytes] = field(default_factory=list)
    records: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    revoked: dict[str, int] = field(default_factory=dict)

    async def send(self, topic: str, key: str, value: bytes) -> RecordMetadata:
        self.published.append(value)
        tp = TopicPartition(topic, 0)
        return RecordMetadata(topic, 0, tp, len(self.published) - 1, 0, 0, 0)

    async def remember(self, account_id: str, digest: str, record: IdempotencyRecord) -> IdempotencyRecord:
        return self.records.setdefault((account_id, digest), record)

    async def active(self, now: datetime, max_token_ttl_s: int) -> dict[str, int]:
        return dict(self.revoked)

    async def revoke(self, jti: str, expires_at: int) -> None:
        self.revoked[jti] = expires_at

    async def available_cash(self, account_id: str) -> Decimal:
        return Decimal("1.00")


@dataclass
class Intake:
    client: httpx.AsyncClient
    redis: Redis
    fakes: FakeBackends
    settings: Settings

    def token(self, user_id: str | None = None) -> tuple[str, dict[str, str]]:
        user_id = user_id or str(uuid.uuid4())
        secret = self.settings.jwt_secret.get_secret_value()
        token, _ = issue_token(user_id, "customer", secret, 3600, datetime.now(UTC))
        return user_id, {"Authorization": f"Bearer {token}"}

    async def round_trips(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, int]:
        before = CountingConnection.sends
        response = await self.client.request(method, path, **kwargs)
        return response, CountingConnection.sends - before


@pytest.fixture
async def intake(settings: Settings) -> AsyncIterator[Intake]:
    """The real app and the real Redis; Kafka and DynamoDB replaced by fakes, which cost no round trip."""
    redis = Redis.from_url(settings.redis_url, connection_class=CountingConnection)
    announcements = Redis.from_url(settings.redis_url)
    fakes = FakeBackends()
    any_fakes = cast(Any, fakes)
    denylist = TokenDenylist(redis, any_fakes, settings.jwt_ttl_seconds)
    app = create_app(settings)
    app.state.resources = Resources(
        settings=settings,
        dynamodb=cast(Any, None),
        redis=redis,
        accounts=any_fakes,
        statuses=cast(Any, None),
        commands=CommandPublisher(fakes),
        idempotency=IdempotencyStore(
            redis, any_fakes, receipt_ttl_s=settings.idempotency_ttl_seconds, claim_ttl_s=10
        ),
        denylist=denylist,
        gate=Gate(redis, denylist),
        assets=cast(Any, None),
        orders=cast(Any, None),
        positions=cast(Any, None),
        live=LiveHub(window_s=60, max_records=1000, subscriber_queue=100),
        # Its own connection: the announcements leave the request path, and are not counted in it.
        announcer=Announcer(announcements),
        stream_tickets=StreamTickets(redis, settings.stream_ticket_ttl_s),
    )
    await redis.set(LOADED_MARKER, b"1")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield Intake(client, redis, fakes, settings)
    await redis.aclose()
    await announcements.aclose()


async def test_a_post_costs_one_redis_round_trip(intake: Intake) -> None:
    user_id, auth = intake.token()
    await intake.round_trips("GET", "/v1/balance", headers=auth)  # connects, loads the script

    response, trips = await intake.round_trips("POST", "/v1/deposits", json={"amount": "2.00"}, headers=auth)
    assert response.status_code == 202, response.text
    assert trips == 1
    command_id = response.json()["command_id"]
    accepted = json.loads(await intake.redis.get(f"command:{command_id}") or b"{}")
    assert accepted["account_id"] == user_id and accepted["kind"] == "deposit"
    assert json.loads(intake.fakes.published[-1])["id"] == command_id

    # With an Idempotency-Key: the claim with the admission, then receipt and record in one pipeline.
    keyed = {**auth, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first, trips = await intake.round_trips("POST", "/v1/withdrawals", json={"amount": "1.00"}, headers=keyed)
    assert first.status_code == 202 and trips == 2
    again, trips = await intake.round_trips("POST", "/v1/withdrawals", json={"amount": "1.00"}, headers=keyed)
    assert again.json() == first.json() and trips == 1
    other, trips = await intake.round_trips("POST", "/v1/withdrawals", json={"amount": "9.00"}, headers=keyed)
    assert other.status_code == 422 and trips == 1

    read, trips = await intake.round_trips("GET", "/v1/balance", headers=auth)
    assert read.status_code == 200 and trips == 1


async def test_a_revoked_token_is_refused_in_the_same_round_trip(intake: Intake) -> None:
    _, auth = intake.token()
    await intake.round_trips("GET", "/v1/balance", headers=auth)
    assert (await intake.client.post("/v1/auth/logout", headers=auth)).status_code == 204
    posted = await intake.round_trips("POST", "/v1/deposits", json={"amount": "1.00"}, headers=auth)
    read = await intake.round_trips("GET", "/v1/balance", headers=auth)
    for response, trips in (posted, read):
        assert response.status_code == 401 and "revoked" in response.json()["detail"]
        assert trips == 1


async def test_a_redis_without_the_denylist_reloads_it_before_answering(intake: Intake) -> None:
    _, auth = intake.token()
    assert (await intake.client.post("/v1/auth/logout", headers=auth)).status_code == 204
    revoked_jti = next(iter(intake.fakes.revoked))
    await intake.redis.delete(LOADED_MARKER, denylist_key(revoked_jti))  # as after a data loss

    refused = await intake.client.post("/v1/deposits", json={"amount": "1.00"}, headers=auth)
    assert refused.status_code == 401, refused.text
    assert await intake.redis.exists(LOADED_MARKER, denylist_key(revoked_jti)) == 2
    _, fresh = intake.token()
    assert (await intake.client.get("/v1/balance", headers=fresh)).status_code == 200


async def test_gcra_allows_the_burst_then_one_per_interval_never_a_second_burst(settings: Settings) -> None:
    redis = Redis.from_url(settings.redis_url)
    try:
        gate = Gate(redis, cast(Any, None))
        limit = Limit("test", str(uuid.uuid4()), requests=5, window_s=1)  # one every 200 ms

        async def passes() -> bool:
            try:
                await gate.admit(jti=None, limits=[limit])
            except ProblemError as refused:
                assert refused.status == 429 and refused.headers == {"Retry-After": "1"}
                return False
            return True

        assert [await passes() for _ in range(7)] == [True] * 5 + [False] * 2
        # A fixed window would let five more through at its next edge; GCRA lets one through per interval.
        await asyncio.sleep(0.25)
        assert [await passes() for _ in range(3)] == [True, False, False]
        await asyncio.sleep(1.05)  # idle for a whole window: the burst is back, and no more
        assert [await passes() for _ in range(6)] == [True] * 5 + [False]
    finally:
        await redis.aclose()


async def test_a_refused_request_does_not_count_against_the_other_limits(settings: Settings) -> None:
    redis = Redis.from_url(settings.redis_url)
    try:
        gate = Gate(redis, cast(Any, None))
        wide = Limit("wide", str(uuid.uuid4()), requests=3, window_s=60)
        narrow = Limit("narrow", str(uuid.uuid4()), requests=1, window_s=60)
        await gate.admit(jti=None, limits=[wide, narrow])
        for _ in range(3):
            with pytest.raises(ProblemError):
                await gate.admit(jti=None, limits=[wide, narrow])
        await gate.admit(jti=None, limits=[wide])
        await gate.admit(jti=None, limits=[wide])
        with pytest.raises(ProblemError):
            await gate.admit(jti=None, limits=[wide])
    finally:
        await redis.aclose()


async def test_a_burst_of_reads_meets_the_read_limit(strict_api: str) -> None:
    async with httpx.AsyncClient(base_url=strict_api, timeout=30) as client:
        user = await register(client)

        async def read(reader: ApiUser) -> httpx.Response:
            return await reader.get("/v1/balance")

        responses: list[httpx.Response] = []
        for _ in range(8):  # 400 GETs, 50 at a time
            responses += await asyncio.gather(*(read(user) for _ in range(50)))
        codes = [r.status_code for r in responses]
        assert codes.count(200) >= 100 and 429 in codes, codes
        refused = next(r for r in responses if r.status_code == 429)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 31
        # The limit is the user's own: another user still reads.
        other = await register(client)
        assert (await read(other)).status_code == 200


async def test_anonymous_routes_are_limited_per_client_ip(strict_api: str) -> None:
    async with httpx.AsyncClient(base_url=strict_api, timeout=30) as client:
        codes = [(await client.get("/v1/assets", params={"limit": 1})).status_code for _ in range(60)]
        assert 429 in codes, codes
        assert (await client.get("/v1/health/live")).status_code == 200, "probes are never limited"
