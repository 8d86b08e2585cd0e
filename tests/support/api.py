"""Acting as a user of the HTTP API: register, log in, send commands, poll their status."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct-horse-battery-9"
TERMINAL = {"settled", "rejected"}


@dataclass
class ApiUser:
    client: httpx.AsyncClient
    username: str
    account_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def post(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return await self.client.post(path, json=body, headers={**self.auth, **headers})

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.auth, params=params)

    async def command(self, path: str, amount: str, idempotency_key: str | None = None) -> str:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = await self.post(path, {"amount": amount}, **headers)
        assert response.status_code == 202, response.text
        command_id: str = response.json()["command_id"]
        return command_id

    async def deposit(self, amount: str) -> str:
        return await self.command("/v1/deposits", amount)

    async def withdraw(self, amount: str) -> str:
        return await self.command("/v1/withdrawals", amount)

    async def wait_for(self, command_id: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            response = await self.get(f"/v1/commands/{command_id}")
            if response.status_code == 200 and response.json()["status"] in TERMINAL:
                body: dict[str, Any] = response.json()
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"command {command_id} not terminal after {timeout_s}s: {response.text}")
            await asyncio.sleep(0.1)

    async def settle(self, path: str, amount: str) -> dict[str, Any]:
        return await self.wait_for(await self.command(path, amount))

    async def balance(self) -> str:
        response = await self.get("/v1/balance")
        assert response.status_code == 200, response.text
        available: str = response.json()["available"]
        return available


async def register(client: httpx.AsyncClient, username: str | None = None) -> ApiUser:
    username = username or f"user_{uuid.uuid4().hex[:12]}"
    created = await client.post("/v1/auth/register", json={"username": username, "password": PASSWORD})
    assert created.status_code == 201, created.text
    login = await client.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return ApiUser(client, username, created.json()["user_id"], login.json()["access_token"])
