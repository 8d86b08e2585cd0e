"""Access tokens (api/security.py): what verified once is taken from memory, and only that."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import jwt
import pytest

from api import security
from api.security import issue_token, read_token

SECRET = "s" * 32
OTHER_SECRET = "o" * 32


def token(ttl_s: int = 60) -> tuple[str, float]:
    now = datetime.now(UTC)
    text, _ = issue_token(str(uuid.uuid4()), "customer", SECRET, ttl_s, now)
    return text, now.timestamp()


def test_a_token_read_again_gives_the_same_claims_until_it_expires() -> None:
    text, issued = token(ttl_s=60)
    first = read_token(text, SECRET, now=issued)
    assert read_token(text, SECRET, now=issued + 59) == first
    with pytest.raises(jwt.ExpiredSignatureError):
        read_token(text, SECRET, now=issued + 60)


def test_a_verified_token_is_trusted_for_that_secret_and_those_bytes_only() -> None:
    text, issued = token()
    read_token(text, SECRET, now=issued)
    with pytest.raises(jwt.InvalidSignatureError):
        read_token(text, OTHER_SECRET, now=issued)
    header, payload, signature = text.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(jwt.InvalidTokenError):
        read_token(tampered, SECRET, now=issued)


def test_the_memory_of_verified_tokens_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_VERIFIED_MAX", 3)
    monkeypatch.setattr(security, "_verified", {})
    texts = [token()[0] for _ in range(5)]
    for text in texts:
        read_token(text, SECRET)
    assert list(security._verified) == [(t, SECRET) for t in texts[-3:]]
