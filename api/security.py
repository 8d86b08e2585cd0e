"""Password hashing (bcrypt) and access tokens (JWT, HS256 pinned)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import bcrypt
import jwt

ALGORITHM = "HS256"
# Compared against when the username is unknown, so a failed login costs the same either way.
_DUMMY_HASH = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(rounds=4))


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


async def verify_password(password: str, password_hash: str | None) -> bool:
    candidate = password_hash.encode() if password_hash else _DUMMY_HASH
    # bcrypt only reads 72 bytes; longer passwords are rejected at registration by the length policy.
    matched = await asyncio.to_thread(bcrypt.checkpw, password.encode()[:72], candidate)
    return matched and password_hash is not None


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


def read_token(token: str, secret: str) -> TokenClaims:
    """Raises jwt.InvalidTokenError for anything but a valid, unexpired token we signed with HS256."""
    claims = jwt.decode(
        token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub", "jti"]}
    )
    role = claims.get("role")
    if role not in {"customer", "admin"}:
        raise jwt.InvalidTokenError("unknown role")
    return TokenClaims(
        user_id=str(claims["sub"]), role=str(role), jti=str(claims["jti"]), expires_at=int(claims["exp"])
    )
