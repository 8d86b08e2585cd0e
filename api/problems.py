"""RFC 9457 problem details for every error the API answers, validation included."""

from __future__ import annotations

from typing import Any

import structlog
from aiokafka.errors import KafkaError
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from infra.retry import is_transient

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
_UNPARSEABLE_BODY = "There was an error parsing the body"


class ProblemError(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        type_: str = "about:blank",
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.type = type_


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def field_error(field: str, message: str) -> ProblemError:
    return ProblemError(422, "Validation failed", message, errors=[{"field": field, "message": message}])


def problem_response(problem: ProblemError) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "amount") -> "amount"; ("query", "limit") -> "limit"; ("header", "x") -> "header.x"
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "missing":
            message = "field required"
        elif err.get("type") == "extra_forbidden":
            message = "unknown field"
        errors.append({"field": _field_name(tuple(err.get("loc", ()))), "message": message})
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            ProblemError(422, "Validation failed", "the request is not valid", errors=_validation_errors(exc))
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSEABLE_BODY:
            # e.g. a JSON number of thousands of digits, past Python's int-parsing limit: it is a body
            # that fails validation like any other, and is answered the same way.
            return problem_response(
                ProblemError(
                    422,
                    "Validation failed",
                    "the body is not JSON this API can read",
                    errors=[
                        {"field": "body", "message": "unreadable JSON (send numbers as decimal strings)"}
                    ],
                )
            )
        return problem_response(
            ProblemError(exc.status_code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None)
        )

    # Registered per class so that ExceptionMiddleware answers them: the catch-all `Exception` handler
    # runs in ServerErrorMiddleware, which re-raises, and uvicorn then drops the keep-alive connection.
    for dependency_error in _DEPENDENCY_ERRORS:
        app.add_exception_handler(dependency_error, _dependency_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return await _dependency_error(request, exc)


_DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    BotoCoreError,
    ClientError,
    KafkaError,
    RedisError,
    OSError,
    TimeoutError,
)


async def _dependency_error(_: Request, exc: Exception) -> JSONResponse:
    if is_transient(exc) or isinstance(exc, RedisConnectionError | RedisTimeoutError):
        # A server restarting is not a bug: tell the client to come back, not that we broke.
        log.warning("api.dependency_unavailable", error=type(exc).__name__)
        return problem_response(
            ProblemError(
                503,
                "Service unavailable",
                "a server this request needs is unavailable; retry later",
                headers={"Retry-After": "2"},
            )
        )
    log.exception("api.unhandled_error", error=type(exc).__name__)
    return problem_response(ProblemError(500, "Internal error", "the error was logged"))
