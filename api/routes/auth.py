"""Registration, login, logout and profile."""

from __future__ import annotations

import time

import structlog
from fastapi import APIRouter, Response

from api.deps import CurrentUser, ResourcesDep
from api.problems import ProblemError
from api.security import hash_password, issue_token, verify_password
from infra.dynamo.accounts import UsernameTaken
from schemas.envelope import utc_now
from schemas.http import LoginRequest, Profile, RegisteredUser, RegisterRequest, TokenResponse

router = APIRouter(prefix="/v1/auth", tags=["auth"])
audit = structlog.get_logger("audit")


@router.post("/register", status_code=201, response_model=RegisteredUser)
async def register(body: RegisterRequest, resources: ResourcesDep) -> RegisteredUser:
    """Create a customer account with a zero USD balance."""
    password_hash = await hash_password(body.password, resources.settings.bcrypt_rounds)
    try:
        user = await resources.accounts.create_user(body.username, password_hash, "customer", utc_now())
    except UsernameTaken as exc:
        audit.info("auth.register", username=body.username, result="taken")
        raise ProblemError(409, "Username taken", "choose another username") from exc
    audit.info("auth.register", username=body.username, account_id=user.user_id, result="created")
    return RegisteredUser(user_id=user.user_id, username=user.username)


@router.post("/login", response_model=TokenResponse)
async def login(body: LoginRequest, resources: ResourcesDep) -> TokenResponse:
    """Exchange a username and password for a bearer token."""
    user = await resources.accounts.find_by_username(body.username)
    if not await verify_password(body.password, user.password_hash if user else None) or user is None:
        audit.info("auth.login", username=body.username, result="denied")
        # The same answer for an unknown name and a wrong password: names are not enumerable.
        raise ProblemError(
            401, "Unauthorized", "invalid username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    settings = resources.settings
    token, expires_in = issue_token(
        user.user_id, user.role, settings.jwt_secret.get_secret_value(), settings.jwt_ttl_seconds, utc_now()
    )
    audit.info("auth.login", username=body.username, account_id=user.user_id, result="ok")
    return TokenResponse(access_token=token, expires_in=expires_in)


@router.post("/logout", status_code=204)
async def logout(user: CurrentUser, resources: ResourcesDep) -> Response:
    """Revoke the presented token until it expires."""
    remaining = max(1, user.expires_at - int(time.time()))
    await resources.redis.set(f"denylist:{user.jti}", b"1", ex=remaining)
    audit.info("auth.logout", account_id=user.user_id, result="ok")
    return Response(status_code=204)


@router.get("/profile", response_model=Profile)
async def profile(user: CurrentUser, resources: ResourcesDep) -> Profile:
    """The caller's own profile."""
    item = await resources.accounts.profile(user.user_id)
    if item is None:
        raise ProblemError(404, "Not found", "no such account")
    return Profile.model_validate(item)
