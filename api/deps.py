"""Dependencies of the routes: resources and the authenticated user, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

import jwt
import structlog
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import ProblemError
from api.resources import Resources
from api.security import TokenClaims, read_token

_bearer = HTTPBearer(auto_error=False)


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenClaims:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required")
    try:
        claims = read_token(credentials.credentials, resources.settings.jwt_secret.get_secret_value())
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("the token is invalid or expired") from exc
    if await resources.denylist.is_revoked(claims.jti):
        raise _unauthorized("the token was revoked")
    structlog.contextvars.bind_contextvars(account_id=claims.user_id)
    return claims


CurrentUser = Annotated[TokenClaims, Depends(current_user)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


async def current_admin(user: CurrentUser) -> TokenClaims:
    if user.role != "admin":
        raise ProblemError(403, "Forbidden", "this needs the admin role")
    return user


CurrentAdmin = Annotated[TokenClaims, Depends(current_admin)]
