"""The running API serves the AsyncAPI document and its page, with the page's own CSP kept."""

from __future__ import annotations

import httpx

from schemas.topics import COMMAND_TOPICS, EVENT_TOPICS, PRICES


async def test_the_api_serves_the_asyncapi_document_and_page(http: httpx.AsyncClient) -> None:
    document = await http.get("/v1/asyncapi.json")
    assert document.status_code == 200
    assert document.headers["content-type"].startswith("application/json")
    addresses = {channel["address"] for channel in document.json()["channels"].values()}
    assert {*COMMAND_TOPICS, *EVENT_TOPICS, PRICES, f"{PRICES}.dlq"} <= addresses

    page = await http.get("/v1/asyncapi")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src https://unpkg.com 'sha256-" in csp and "default-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
