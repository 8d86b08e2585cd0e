"""The HTTP intake: `uvicorn api.app:create_app --factory`."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram

from api.idempotency import IdempotencyStore
from api.middleware import RequestGuard, SecurityHeaders
from api.problems import install_problem_handlers
from api.resources import Resources
from api.revocation import TokenDenylist
from api.routes import admin, assets, auth, balance, cash, commands, health, orders, portfolio
from infra.dynamo.accounts import DynamoAccounts
from infra.dynamo.assets import AssetDirectory, DynamoAssets
from infra.dynamo.client import dynamodb_client
from infra.dynamo.idempotency_records import DynamoIdempotencyRecords
from infra.dynamo.orders import DynamoOrders
from infra.dynamo.portfolio_store import DynamoPortfolioStore
from infra.dynamo.revocations import DynamoRevocations
from infra.dynamo.status_store import DynamoStatusStore
from infra.kafka.producer import KafkaPublisher, make_producer
from infra.logging import configure_logging
from infra.redis import make_redis
from infra.retry import retry_transient
from infra.settings import Settings, get_settings
from infra.telemetry import configure_tracing, current_trace_id, tracer
from producers.commands import CommandPublisher

log = structlog.get_logger(__name__)
REQUESTS = Counter("ledgerflow_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("ledgerflow_http_request_seconds", "HTTP request latency", ["method", "route"])


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings, "api")
    configure_tracing("api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(dynamodb_client(settings))
            redis = make_redis(settings)
            stack.push_async_callback(redis.aclose)
            producer = make_producer(settings, "ledgerflow-api")
            await retry_transient(producer.start, max_backoff_s=2)
            stack.push_async_callback(producer.stop)
            app.state.producer = producer
            app.state.resources = Resources(
                settings=settings,
                dynamodb=client,
                redis=redis,
                accounts=DynamoAccounts(client, settings.dynamodb_table),
                statuses=DynamoStatusStore(client, settings.dynamodb_table),
                commands=CommandPublisher(KafkaPublisher(producer)),
                idempotency=IdempotencyStore(
                    redis,
                    DynamoIdempotencyRecords(client, settings.dynamodb_table),
                    receipt_ttl_s=settings.idempotency_ttl_seconds,
                    claim_ttl_s=settings.idempotency_claim_ttl_s,
                ),
                denylist=TokenDenylist(
                    redis, DynamoRevocations(client, settings.dynamodb_table), settings.jwt_ttl_seconds
                ),
                assets=AssetDirectory(
                    DynamoAssets(client, settings.dynamodb_table), settings.asset_cache_ttl_s
                ),
                orders=DynamoOrders(client, settings.dynamodb_table),
                positions=DynamoPortfolioStore(client, settings.dynamodb_table),
            )
            log.info("api.started")
            yield

    app = FastAPI(
        title="ledgerflow",
        version="1.0.0",
        description="Cash ledger and market orders, settled asynchronously over Kafka.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    for module in (auth, cash, commands, balance, health, admin, orders, portfolio, assets):
        app.include_router(module.router)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        structlog.contextvars.clear_contextvars()
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        with tracer().start_as_current_span(f"{request.method} {request.url.path}", kind=SpanKind.SERVER):
            structlog.contextvars.bind_contextvars(
                service="api",
                request_id=request_id,
                trace_id=current_trace_id(),
                path=request.url.path,
                client_ip=request.client.host if request.client else None,
            )
            response = await call_next(request)
        route = request.scope.get("route")
        route_path = getattr(route, "path", "unmatched")
        REQUESTS.labels(request.method, route_path, str(response.status_code)).inc()
        LATENCY.labels(request.method, route_path).observe(time.perf_counter() - started)
        response.headers["X-Request-Id"] = request_id
        return response

    # Outermost last: headers go on everything, CORS answers preflights, the guard sees raw bodies.
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        max_age=600,
    )
    app.add_middleware(SecurityHeaders)
    return app
