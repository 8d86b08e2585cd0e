"""Live status against the real system: the long poll, stream tickets and the event stream (issue 10).

The streams are read from an API of their own (two workers, as `make run` runs it) with a short
heartbeat and ticket life, beside the suite's; a reconnect may land on either worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.conftest import RunningSystem, start_api_beside
from tests.support.api import ApiUser, register
from tests.support.live import Stream, open_stream, ticket
from tests.support.trading import send_tick

pytestmark = pytest.mark.integration

TICKET_TTL_S = 2
LIVE_ENV = {
    "LEDGERFLOW_STREAM_HEARTBEAT_S": "0.5",
    "LEDGERFLOW_STREAM_TICKET_TTL_S": str(TICKET_TTL_S),
}


@pytest.fixture(scope="module")
def live_url(system: RunningSystem) -> Iterator[str]:
    yield start_api_beside(system, "live-api", LIVE_ENV)
    system.supervisor.stop("live-api")


@pytest.fixture
async def live(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=40) as client:
        yield client


@pytest.fixture
def ledger_paused(system: RunningSystem) -> Iterator[Callable[[], None]]:
    """The ledger consumer stopped for the test: its commands stay accepted until the test calls the
    fixture's value, which starts it again as it was started (its metrics port included)."""
    spec = system.supervisor.stop("ledger")

    def resume() -> None:
        if system.supervisor.pid("ledger") is None:
            system.supervisor.start(spec)

    try:
        yield resume
    finally:
        resume()


async def polled(user: ApiUser, command_id: str) -> dict[str, object]:
    response = await user.get(f"/v1/commands/{command_id}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


# ------------------------------------------------------------------------------------------ long poll


async def test_a_long_poll_waits_for_the_outcome_and_answers_as_it_arrives(
    system: RunningSystem, live: httpx.AsyncClient, ledger_paused: Callable[[], None]
) -> None:
    alice = await register(live)
    command_id = await alice.deposit("12.50")

    started = time.monotonic()
    response = await alice.get(f"/v1/commands/{command_id}", wait=1.5)
    waited = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    assert 1.5 <= waited < 4, waited

    long_poll = asyncio.create_task(alice.get(f"/v1/commands/{command_id}", wait=30))
    await asyncio.sleep(1)
    assert not long_poll.done()
    await asyncio.to_thread(ledger_paused)
    response = await asyncio.wait_for(long_poll, 30)
    answered = datetime.now().astimezone()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "settled"
    assert body == await polled(alice, command_id)
    # Woken by the outcome, not by the end of the wait: well under a second after settlement.
    delay_s = (answered - datetime.fromisoformat(body["completed_at"])).total_seconds()
    assert delay_s < 2, delay_s


async def test_a_long_poll_of_a_terminal_command_answers_at_once(live: httpx.AsyncClient) -> None:
    alice = await register(live)
    command_id = await alice.deposit("3.00")
    await alice.wait_for(command_id)
    started = time.monotonic()
    response = await alice.get(f"/v1/commands/{command_id}", wait=20)
    assert response.status_code == 200 and response.json()["status"] == "settled"
    assert time.monotonic() - started < 2


async def test_a_long_poll_of_someone_elses_command_is_404_at_once(live: httpx.AsyncClient) -> None:
    alice, mallory = await register(live), await register(live)
    command_id = await alice.deposit("4.00")
    started = time.monotonic()
    for target in (command_id, str(uuid.uuid4())):
        response = await mallory.get(f"/v1/commands/{target}", wait=10)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("wait", ["-1", "30.5", "31", "abc", "nan", "inf", ""])
async def test_a_wait_outside_0_to_30_seconds_is_422(live: httpx.AsyncClient, wait: str) -> None:
    alice = await register(live)
    response = await live.get(f"/v1/commands/{uuid.uuid4()}?wait={wait}", headers=alice.auth)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["wait"]


# -------------------------------------------------------------------------------------- stream: auth


async def test_a_ticket_opens_one_stream_once(live: httpx.AsyncClient) -> None:
    alice = await register(live)
    issued = await live.post("/v1/auth/stream-ticket", headers=alice.auth)
    assert issued.status_code == 201, issued.text
    assert issued.json()["expires_in"] == TICKET_TTL_S
    value = issued.json()["ticket"]

    async with open_stream(live, params={"ticket": value}) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
    async with open_stream(live, params={"ticket": value}) as again:
        assert again.response.status_code == 401
        await again.response.aread()
        assert again.response.headers["content-type"].startswith("application/problem+json")
        assert again.response.json()["status"] == 401


async def test_a_wrong_or_expired_ticket_or_no_credentials_is_401(live: httpx.AsyncClient) -> None:
    alice = await register(live)
    expired = await ticket(live, alice.auth)
    await asyncio.sleep(TICKET_TTL_S + 1)
    for params in ({"ticket": expired}, {"ticket": "not-a-ticket-we-issued"}, {}):
        async with open_stream(live, params=params) as stream:
            assert stream.response.status_code == 401, params
            await stream.response.aread()
            assert stream.response.headers["content-type"].startswith("application/problem+json")
    assert (await live.post("/v1/auth/stream-ticket")).status_code == 401


async def test_a_ticket_of_a_logged_out_token_is_refused(live: httpx.AsyncClient) -> None:
    alice = await register(live)
    value = await ticket(live, alice.auth)
    assert (await live.post("/v1/auth/logout", headers=alice.auth)).status_code == 204
    async with open_stream(live, params={"ticket": value}) as stream:
        assert stream.response.status_code == 401


async def test_an_unreadable_last_event_id_is_422(live: httpx.AsyncClient) -> None:
    alice = await register(live)
    async with open_stream(live, headers={**alice.auth, "Last-Event-ID": "yesterday"}) as stream:
        assert stream.response.status_code == 422
        await stream.response.aread()
        assert [e["field"] for e in stream.response.json()["errors"]] == ["Last-Event-ID"]


# ----------------------------------------------------------------------------------- stream: events


async def test_a_user_sees_their_command_go_from_accepted_to_settled(live: httpx.AsyncClient) -> None:
    alice = await register(live)
    async with open_stream(live, headers=alice.auth) as stream:
        command_id = await alice.deposit("25.00")
        _, accepted = await stream.command()
        _, settled = await stream.until(command_id, "settled")
        # The data is the status exactly as the poll answers it, at each step.
        assert settled == await polled(alice, command_id)
        assert accepted == {**settled, "status": "accepted", "result": None, "completed_at": None}
        assert settled["result"]["balance_after"] == "25.00"


async def test_a_command_accepted_by_another_api_process_shows_on_this_ones_stream(
    live: httpx.AsyncClient, http: httpx.AsyncClient, ledger_paused: Callable[[], None]
) -> None:
    """The stream's API reads no command topic past its start: the accepting API's announcement is how
    `accepted` reaches it (the ledger is paused so that the outcome cannot overtake it)."""
    alice = await register(live)
    elsewhere = dataclasses.replace(alice, client=http)  # the suite's API: another process
    async with open_stream(live, headers=alice.auth) as stream:
        command_id = await elsewhere.deposit("7.00")
        _, accepted = await stream.command(timeout_s=10)
        assert accepted["command_id"] == command_id and accepted["status"] == "accepted"
        assert accepted == await polled(alice, command_id)
        await asyncio.to_thread(ledger_paused)
        _, settled = await stream.until(command_id, "settled")
    assert settled == await polled(alice, command_id)


async def test_a_stream_opened_with_a_ticket_carries_commands_and_price_ticks(
    live: httpx.AsyncClient, settings: Settings
) -> None:
    alice = await register(live)
    async with open_stream(live, params={"ticket": await ticket(live, alice.auth)}) as stream:
        command_id = await alice.deposit("5.00")
        await stream.until(command_id, "settled")
        await send_tick(settings.kafka_bootstrap_servers, "KAVA", "0.7512")
        tick = json.loads((await stream.next("price")).data)
        assert tick["asset"] == "KAVA" and tick["price"] == "0.7512"
        assert datetime.fromisoformat(tick["at"]).tzinfo is not None


async def test_a_user_never_receives_another_users_command_events(live: httpx.AsyncClient) -> None:
    alice, bob = await register(live), await register(live)
    async with (
        open_stream(live, headers=alice.auth) as alices,
        open_stream(live, params={"ticket": await ticket(live, bob.auth)}) as bobs,
    ):
        alice_commands = {await alice.deposit(f"{n}.00") for n in range(1, 6)}
        bob_commands = {await bob.deposit("9.00")}
        seen_by_alice = await settled_on(alices, alice_commands)
        seen_by_bob = await settled_on(bobs, bob_commands)
        await asyncio.sleep(0.5)  # anything else on its way arrives meanwhile
        seen_by_alice += [json.loads(e.data) for e in alices.received() if e.event == "command"]
        seen_by_bob += [json.loads(e.data) for e in bobs.received() if e.event == "command"]
    assert {d["command_id"] for d in seen_by_alice} == alice_commands
    assert {d["command_id"] for d in seen_by_bob} == bob_commands


async def settled_on(stream: Stream, command_ids: set[str]) -> list[dict[str, Any]]:
    """Every command event of the stream until each of `command_ids` has settled on it."""
    seen: list[dict[str, Any]] = []
    while not command_ids <= {d["command_id"] for d in seen if d["status"] == "settled"}:
        seen.append((await stream.command())[1])
    return seen


async def test_a_reconnect_with_last_event_id_replays_what_was_missed(live: httpx.AsyncClient) -> None:
    alice = await register(live)
    async with open_stream(live, headers=alice.auth) as stream:
        first = await alice.deposit("1.00")
        last_id, _ = await stream.until(first, "settled")
    # Disconnected: two more commands settle meanwhile.
    missed = [await alice.deposit("2.00"), await alice.withdraw("1.50")]
    for command_id in missed:
        await alice.wait_for(command_id)

    async with open_stream(live, headers={**alice.auth, "Last-Event-ID": last_id}) as again:
        replayed: list[dict[str, Any]] = []
        while len([d for d in replayed if d["status"] == "settled"]) < len(missed):
            replayed.append((await again.command(timeout_s=10))[1])
    assert {d["command_id"] for d in replayed} == set(missed)
    assert all(d["command_id"] != first for d in replayed)
    # Each command settled before the reconnect, so its replay ends with what the poll says now. It may
    # still start at `accepted`: the poll reads the outcome record the ledger committed to DynamoDB, and
    # this worker's feed reads the outcome event the ledger publishes only after that commit (CI once
    # reconnected in between). The status never goes backwards.
    for command_id in missed:
        mine = [d for d in replayed if d["command_id"] == command_id]
        assert [d["status"] for d in mine] in (["settled"], ["accepted", "settled"]), mine
        assert mine[-1] == await polled(alice, command_id)


async def test_a_worker_started_later_replays_from_the_window_it_filled(
    system: RunningSystem, live: httpx.AsyncClient
) -> None:
    alice = await register(live)
    async with open_stream(live, headers=alice.auth) as stream:
        first = await alice.deposit("1.00")
        last_id, _ = await stream.until(first, "settled")
    missed = await alice.deposit("2.00")
    await alice.wait_for(missed)
    # This API's hub starts after both settled: it has them only from reading back its window.
    late = await asyncio.to_thread(start_api_beside, system, "live-api-late", LIVE_ENV)
    try:
        async with (
            httpx.AsyncClient(base_url=late, timeout=30) as client,
            open_stream(client, headers={**alice.auth, "Last-Event-ID": last_id}) as again,
        ):
            _, replayed = await again.until(missed, "settled", timeout_s=10)
        assert replayed == await polled(alice, missed)
    finally:
        await asyncio.to_thread(system.supervisor.stop, "live-api-late")


async def test_the_stream_sends_a_heartbeat_comment_and_is_counted(live: httpx.AsyncClient) -> None:
    alice = await register(live)
    async with live.stream("GET", "/v1/stream", headers=alice.auth) as response:
        assert response.status_code == 200
        # Held, not left to the collector: closing the iterator would close the stream.
        lines = response.aiter_lines()
        started = time.monotonic()
        async with asyncio.timeout(5):
            async for line in lines:
                if line.startswith(":"):
                    break
        assert time.monotonic() - started < 3
        metrics = (await live.get("/metrics")).text
        open_streams = next(
            line for line in metrics.splitlines() if line.startswith("ledgerflow_live_streams ")
        )
        assert float(open_streams.split()[1]) >= 1


async def test_sigterm_does_not_wait_for_open_streams(system: RunningSystem) -> None:
    url = await asyncio.to_thread(start_api_beside, system, "live-api-stopping", LIVE_ENV)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        alice = await register(client)
        async with open_stream(client, headers=alice.auth) as stream:
            assert stream.response.status_code == 200
            started = time.monotonic()
            await asyncio.to_thread(system.supervisor.stop, "live-api-stopping", 20)
            stopped_in = time.monotonic() - started
    # Well inside the graceful-shutdown timeout (5 s), which only long polls would need.
    assert stopped_in < 4, stopped_in
