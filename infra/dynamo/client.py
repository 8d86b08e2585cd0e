"""aioboto3 DynamoDB client factory and value conversion for the low-level API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import aioboto3
from aiobotocore.config import AioConfig
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer  # type: ignore[import-untyped]

from infra.dynamo.request_stats import count_requests
from infra.settings import Settings

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient as DynamoDBClient
else:
    DynamoDBClient = Any

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@asynccontextmanager
async def dynamodb_client(settings: Settings) -> AsyncIterator[DynamoDBClient]:
    session = aioboto3.Session()
    # Retries of throttling and 5xx are ours (infra.retry), so the SDK does few of its own.
    config = AioConfig(
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=64,
        # DynamoDB validates every request itself; botocore's client-side pass over each request's
        # parameters was about 5 % of a settling consumer's CPU (py-spy, README "Performance").
        parameter_validation=False,
    )
    secret = settings.aws_secret_access_key
    async with session.client(
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint_url,
        config=config,
        region_name=settings.aws_region,
        # None lets boto find real AWS credentials (environment, profile, instance role).
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
    ) as client:
        if settings.stats_dir:
            count_requests(client, settings.stats_dir)
        yield client


def to_attr(value: Any) -> Any:
    return _serializer.serialize(value)


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def as_decimal(value: Any, default: Decimal = Decimal(0)) -> Decimal:
    if value is None:
        return default
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))
