"""Liveness, readiness (each dependency's state) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api import metrics as api_metrics
from api.deps import ResourcesDep

router = APIRouter(tags=["health"])


@router.get("/v1/health/live")
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, timeout=2)
    except Exception as exc:
        return name, f"down: {type(exc).__name__}"
    return name, "up"


@router.get("/v1/health/ready")
async def ready(request: Request, resources: ResourcesDep) -> JSONResponse:
    """200 when DynamoDB, Redis and Kafka all answer; 503 with each one's state otherwise."""
    producer = request.app.state.producer
    checks = dict(
        await asyncio.gather(
            _check(
                "dynamodb", resources.dynamodb.describe_table(TableName=resources.settings.dynamodb_table)
            ),
            _check("redis", resources.redis.ping()),
            _check("kafka", producer.client.fetch_all_metadata()),
        )
    )
    healthy = all(v == "up" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status_code=200 if healthy else 503
    )


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text for the whole API, every worker process summed (api/metrics.py)."""
    return Response(api_metrics.latest(), media_type=CONTENT_TYPE_LATEST)
