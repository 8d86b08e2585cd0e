"""Dependencies of the routes: resources, the caller and the rate limits, as `Annotated` aliases.

All of them are `async`: FastAPI runs a plain `def` dependency in the thread pool, a hop per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import jwt
import structlog
from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.gate import Limit
from api.problems import ProblemError, unauthorized
from api.rate_limit import auth_limits, client_ip, read_limits
from api.resources import Resources
from api.security import TokenClaims, read_token

_bearer = HTTPBearer(auto_error=False)


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


@dataclass(frozen=True)
class Caller:
    """A caller whose token is signed and unexpired; whether it was revoked is not checked yet."""

    claims: TokenClaims
    ip: str

    @property
    def user_id(self) -> str:
        return self.claims.user_id


async def signed_caller(
    request: Request,
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("a bearer token is required")
    try:
        claims = read_token(credentials.credentials, resources.settings.jwt_secret.get_secret_value())
    except jwt.InvalidTokenError as exc:
        raise unauthorized("the token is invalid or expired") from exc
    structlog.contextvars.bind_contextvars(account_id=claims.user_id)
    return Caller(claims, client_ip(request))


# For command POSTs: the intake checks the denylist and the limits in the same round trip as its own
# write (api/intake.py), once the body is known.
CommandCaller = Annotated[Caller, Depends(signed_caller)]


async def current_user(caller: CommandCaller, resources: ResourcesDep) -> TokenClaims:
    """The caller of any other authenticated route: not revoked, within the read limit."""
    limits = read_limits(resources.settings, caller.user_id)
    await resources.gate.admit(jti=caller.claims.jti, limits=limits)
    return caller.claims


CurrentUser = Annotated[TokenClaims, Depends(current_user)]


async def stream_user(
    request: Request,
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ticket: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> str:
    """The stream's user, from a ticket (`EventSource` cannot send a header) or the bearer token. The
    stream counts once against the read limit, when it opens; a ticket's token must not be revoked."""
    if ticket is None:
        claims = await current_user(await signed_caller(request, resources, credentials), resources)
        return claims.user_id
    owner = await resources.stream_tickets.redeem(ticket)
    if owner is None:
        raise unauthorized("the stream ticket is unknown, used or expired")
    structlog.contextvars.bind_contextvars(account_id=owner.user_id)
    await resources.gate.admit(jti=owner.jti, limits=read_limits(resources.settings, owner.user_id))
    return owner.user_id


StreamUser = Annotated[str, Depends(stream_user)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


async def current_admin(user: CurrentUser) -> TokenClaims:
    if user.role != "admin":
        raise ProblemError(403, "Forbidden", "this needs the admin role")
    return user


CurrentAdmin = Annotated[TokenClaims, Depends(current_admin)]


async def limit_anonymous(request: Request, resources: ResourcesDep) -> None:
    settings = resources.settings
    limit = Limit(
        "anon-ip", client_ip(request), settings.rate_limit_anonymous_per_ip, settings.rate_limit_window_s
    )
    await resources.gate.admit(jti=None, limits=[limit])


async def limit_registration(request: Request, resources: ResourcesDep) -> None:
    await resources.gate.admit(jti=None, limits=auth_limits(resources.settings, client_ip(request)))


RegistrationRateLimit = Annotated[None, Depends(limit_registration)]
