"""The process-wide adapters the API's routes use, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from api.gate import Gate
from api.idempotency import IdempotencyStore
from api.live.announce import Announcer
from api.live.hub import LiveHub
from api.live.tickets import StreamTickets
from api.revocation import TokenDenylist
from infra.dynamo.accounts import DynamoAccounts
from infra.dynamo.assets import AssetDirectory
from infra.dynamo.client import DynamoDBClient
from infra.dynamo.command_statuses import DynamoCommandStatuses
from infra.dynamo.orders import DynamoOrders
from infra.dynamo.portfolio_store import DynamoPortfolioStore
from infra.settings import Settings
from producers.commands import CommandPublisher


@dataclass(frozen=True)
class Resources:
    settings: Settings
    dynamodb: DynamoDBClient
    redis: Redis
    accounts: DynamoAccounts
    statuses: DynamoCommandStatuses
    commands: CommandPublisher
    idempotency: IdempotencyStore
    denylist: TokenDenylist
    # The denylist, the rate limits and the intake's write, in one Redis round trip per request.
    gate: Gate
    # Trading's read paths.
    assets: AssetDirectory
    orders: DynamoOrders
    positions: DynamoPortfolioStore
    # Live status: this worker's view of the status topics and prices, what it tells the other workers
    # of the commands it accepted, and the streams' tickets.
    live: LiveHub
    announcer: Announcer
    stream_tickets: StreamTickets
