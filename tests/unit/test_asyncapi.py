"""The AsyncAPI document names every topic of the contract with a schema for every message on it, and
the API serves it (and a page whose CSP lets exactly its own inline script run)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest

from api.routes.asyncapi import _page, asyncapi_json
from consumers.asyncapi import specification
from consumers.registry import CONSUMERS
from schemas.catalogue import TOPIC_MESSAGES, version_of
from schemas.topics import ALL_TOPICS, dead_letter_topic


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded = json.loads(specification().to_json())
    assert isinstance(loaded, dict)
    return loaded


def _resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    target: Any = document
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    assert isinstance(target, dict), ref
    return target


def _message_types(document: dict[str, Any], node: Any, seen: set[str] | None = None) -> dict[str, int]:
    """Every enveloped message type (its `type` and `version` constants) reachable from `node`."""
    seen = set() if seen is None else seen
    found: dict[str, int] = {}
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            seen.add(ref)
            found |= _message_types(document, _resolve(document, ref), seen)
        props = node.get("properties", {})
        if "const" in props.get("type", {}) and "payload" in props:
            found[props["type"]["const"]] = props["version"]["const"]
        for key, value in node.items():
            if key != "$ref":
                found |= _message_types(document, value, seen)
    elif isinstance(node, list):
        for item in node:
            found |= _message_types(document, item, seen)
    return found


def _by_address(document: dict[str, Any], action: str) -> dict[str, dict[str, int]]:
    """address -> the message types of the operations of `action` (send/receive) on it."""
    found: dict[str, dict[str, int]] = {}
    for operation in document["operations"].values():
        if operation["action"] != action:
            continue
        channel = _resolve(document, operation["channel"]["$ref"])
        types = _message_types(document, channel["messages"])
        found.setdefault(channel["address"], {}).update(types)
    return found


def test_every_topic_has_a_schema_for_every_message_it_carries(document: dict[str, Any]) -> None:
    sent = _by_address(document, "send")
    assert set(sent) == set(ALL_TOPICS) - {
        dead_letter_topic(t) for t in TOPIC_MESSAGES if not any(t in c.reads for c in CONSUMERS.values())
    }
    for topic, models in TOPIC_MESSAGES.items():
        expected = {name: version_of(model) for name, model in models.items()}
        assert sent[topic] == expected, topic
        if dead_letter_topic(topic) in sent:
            assert sent[dead_letter_topic(topic)] == expected, dead_letter_topic(topic)


def test_every_consumer_declares_what_it_reads(document: dict[str, Any]) -> None:
    received = _by_address(document, "receive")
    for spec in CONSUMERS.values():
        for topic in spec.reads:
            assert received[topic] == {n: version_of(m) for n, m in TOPIC_MESSAGES[topic].items()}


def test_money_is_a_decimal_string_in_the_document(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    amount = schemas["Deposit"]["properties"]["amount"]
    assert amount["type"] == "string" and "pattern" in amount


async def test_the_api_serves_the_document() -> None:
    response = await asyncapi_json()
    assert response.media_type == "application/json"
    assert json.loads(bytes(response.body))["asyncapi"].startswith("3.")


def test_the_page_allows_only_its_own_inline_script() -> None:
    html, csp = _page()
    inline = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert inline, "the page renders the document with an inline script"
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "default-src 'none'" in csp
