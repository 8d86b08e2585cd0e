"""Password hashing (bcrypt) and access tokens (JWT, HS256 pinned)."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import bcrypt
import jwt

ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    role: str
    jti: str
    expires_at: int


async def hash_password(password: str, rounds: int) -> str:
    salt = bcrypt.gensalt(rounds=rounds)
    hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), salt)
    return hashed.decode()


@functools.lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> bytes:
    """Checked when the username is unknown, at the real work factor, so both failures cost the same."""
    return bcrypt.hashpw(b"no-such-user-placeholder", bcrypt.gensalt(rounds=rounds))


async def verify_password(password: str, password_hash: str | None, rounds: int) -> bool:
    candidate = password_hash.encode() if password_hash else _dummy_hash(rounds)
    # bcrypt reads at most 72 bytes (and bcrypt 5 refuses more); registration caps passwords there.
    secret = password.encode()[:72]
    # No stored password holds a NUL (registration refuses control characters), and bcrypt would
    # refuse it: do the same work and fail.
    valid_input = b"\0" not in secret
    matched = await asyncio.to_thread(bcrypt.checkpw, secret if valid_input else b"-", candidate)
    return matched and valid_input and password_hash is not None


def issue_token(user_id: str, role: str, secret: str, ttl_seconds: int, now: datetime) -> tuple[str, int]:
    expires = now + timedelta(seconds=ttl_seconds)
    claims = {
        "sub": user_id,
        "role": role,
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), ttl_seconds


# Tokens already verified, with their claims: a client sends the same token with every request, and
# verifying it (two base64 decodes, two JSON parses, an HMAC) cost about 8 % of the intake's CPU. Keyed by
# the whole token and the secret, so only the very bytes that verified are taken on trust; expiry is
# still checked on every use, and revocation is the denylist's, checked per request as before.
_VERIFIED_MAX = 10_000
_verified: dict[tuple[str, str], TokenClaims] = {}


def read_token(token: str, secret: str, now: float | None = None) -> TokenClaims:
    """Raises jwt.InvalidTokenError for anything but a valid, unexpired token we signed with HS256."""
    now = time.time() if now is None else now
    claims = _verified.get((token, secret))
    if claims is None:
        claims = _verify(token, secret)
        if len(_verified) >= _VERIFIED_MAX:
            del _verified[next(iter(_verified))]  # the oldest: dicts keep insertion order
        _verified[(token, secret)] = claims
    if now >= claims.expires_at:  # as PyJWT: expired from the second `exp` names
        raise jwt.ExpiredSignatureError("Signature has expired")
    return claims


def _verify(token: str, secret: str) -> TokenClaims:
    claims = jwt.decode(
        token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub", "jti"]}
    )
    role = claims.get("role")
    if role not in {"customer", "admin"}:
        raise jwt.InvalidTokenError("unknown role")
    return TokenClaims(
        user_id=str(claims["sub"]), role=str(role), jti=str(claims["jti"]), expires_at=int(claims["exp"])
    )
