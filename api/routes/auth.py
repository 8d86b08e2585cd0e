"""Registration, login, logout and profile."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import CurrentUser, RegistrationRateLimit, ResourcesDep
from api.problems import ProblemError
from api.rate_limit import auth_limits, client_ip
from api.security import hash_password, issue_token, verify_password
from infra.audit import audit
from infra.dynamo.accounts import UsernameTaken
from schemas.envelope import utc_now
from schemas.http import LoginRequest, Profile, RegisteredUser, RegisterRequest, TokenResponse

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post("/register", status_code=201, response_model=RegisteredUser)
async def register(
    body: RegisterRequest, request: Request, resources: ResourcesDep, _: RegistrationRateLimit
) -> RegisteredUser:
    """Create a customer account with a zero USD balance."""
    password_hash = await hash_password(body.password, resources.settings.bcrypt_rounds)
    try:
        user = await resources.accounts.create_user(body.username, password_hash, "customer", utc_now())
    except UsernameTaken as exc:
        audit("auth.register", username=body.username, client_ip=client_ip(request), result="taken")
        raise ProblemError(409, "Username taken", "choose another username") from exc
    audit(
        "auth.register",
        username=body.username,
        account_id=user.user_id,
        client_ip=client_ip(request),
        result="created",
    )
    return RegisteredUser(user_id=user.user_id, username=user.username)


@router.post("/login", response_model=TokenResponse)
async def login(body: LoginRequest, request: Request, resources: ResourcesDep) -> TokenResponse:
    """Exchange a username and password for a bearer token."""
    # Per client IP and per username, in one round trip.
    limits = auth_limits(resources.settings, client_ip(request), body.username)
    await resources.gate.admit(jti=None, limits=limits)
    user = await resources.accounts.find_by_username(body.username)
    matched = await verify_password(
        body.password, user.password_hash if user else None, resources.settings.bcrypt_rounds
    )
    if user is None or not matched:
        audit("auth.login", username=body.username, client_ip=client_ip(request), result="denied")
        # The same answer, after the same bcrypt work, for an unknown name and a wrong password.
        raise ProblemError(
            401, "Unauthorized", "invalid username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    settings = resources.settings
    token, expires_in = issue_token(
        user.user_id, user.role, settings.jwt_secret.get_secret_value(), settings.jwt_ttl_seconds, utc_now()
    )
    audit(
        "auth.login",
        username=body.username,
        account_id=user.user_id,
        client_ip=client_ip(request),
        result="ok",
    )
    return TokenResponse(access_token=token, expires_in=expires_in)


@router.post("/logout", status_code=204)
async def logout(user: CurrentUser, request: Request, resources: ResourcesDep) -> Response:
    """Revoke the presented token until it expires."""
    await resources.denylist.revoke(user.jti, user.expires_at)
    audit("auth.logout", account_id=user.user_id, client_ip=client_ip(request), result="ok")
    return Response(status_code=204)


@router.get("/profile", response_model=Profile)
async def profile(user: CurrentUser, resources: ResourcesDep) -> Profile:
    """The caller's own profile."""
    item = await resources.accounts.profile(user.user_id)
    if item is None:
        raise ProblemError(404, "Not found", "no such account")
    return Profile.model_validate(item)
