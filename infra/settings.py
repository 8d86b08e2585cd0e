"""One settings object for every process, read from `LEDGERFLOW_*` environment variables."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "local-dev-only-secret-change-me-0123456789abcdef"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGERFLOW_", extra="ignore", frozen=True)

    environment: Literal["local", "test", "production"] = "local"

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Tansu rejects InitProducerId v0, so idempotence is off locally and on for Apache Kafka.
    kafka_enable_idempotence: bool = False
    kafka_command_partitions: int = Field(default=4, ge=1, le=1024)
    kafka_event_partitions: int = Field(default=4, ge=1, le=1024)
    kafka_replication_factor: int = Field(default=1, ge=1, le=16)
    kafka_session_timeout_ms: int = Field(default=6000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=1000, ge=100)
    kafka_fetch_max_wait_ms: int = Field(default=20, ge=0, le=10_000)
    kafka_max_message_bytes: int = Field(default=1_048_576, ge=1024)
    # Records a consumer fetches at once: its partitions are then handled concurrently, each in order.
    kafka_batch_max_records: int = Field(default=100, ge=1, le=10_000)
    # How long a consumer waits for the records hidden in a hole in a partition's offsets (a Tansu race,
    # infra/kafka/holes.py); 0 turns the check off.
    kafka_hole_wait_s: float = Field(default=5.0, ge=0, le=300)
    # How ledger, trading and portfolio settle fetched records: a fetch's records together, across its
    # partitions (one read of all their accounts, one coalesced write per account, as few transactions
    # as the limits allow); each partition's records together (`partition`); or one command per
    # transaction. All are exactly-once (consumers/common/settle.py, consumers/common/combine.py).
    settle_mode: Literal["batched", "partition", "one"] = "batched"

    # DynamoDB (an endpoint URL points at DynamoDB Local; None means AWS itself)
    dynamodb_endpoint_url: str | None = "http://127.0.0.1:8000"
    dynamodb_table: str = Field(default="ledgerflow", pattern=r"^[A-Za-z0-9_.-]{3,255}$")
    aws_region: str = "us-east-1"
    aws_access_key_id: str | None = "local"
    aws_secret_access_key: SecretStr | None = SecretStr("local")

    @field_validator("dynamodb_endpoint_url", "aws_access_key_id", "aws_secret_access_key", mode="before")
    @classmethod
    def _empty_means_aws(cls, value: object) -> object:
        # An environment variable cannot be unset by a deployment's config, only emptied: empty means
        # AWS itself, with credentials from botocore's own chain (an instance or pod role).
        return None if value == "" else value

    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"

    # HTTP intake
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    jwt_secret: SecretStr = SecretStr(DEFAULT_JWT_SECRET)
    jwt_ttl_seconds: int = Field(default=3600, ge=60)
    # bcrypt's work factor: 12 in production; the tests lower it to keep registration fast.
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    # How long Redis caches a key's receipt (the durable record in DynamoDB never expires).
    idempotency_ttl_seconds: int = Field(default=86_400, ge=86_400)
    # How long a request holds its key while publishing: a crashed request's key is free again after it.
    idempotency_claim_ttl_s: int = Field(default=10, ge=2, le=300)
    # The longest the intake waits for the broker's acknowledgement before answering 503.
    intake_publish_timeout_s: float = Field(default=3.0, gt=0, le=60)
    command_status_ttl_seconds: int = Field(default=7 * 86_400, ge=3600)
    # Uvicorn worker processes behind the one port (`make run`, the tests, the benchmark).
    api_workers: int = Field(default=2, ge=1, le=64)
    # How long the API's producer waits to batch commands into one produce request.
    kafka_api_linger_ms: int = Field(default=5, ge=0, le=1000)

    # Live status (api/live/): how far back a stream's `Last-Event-ID` can replay (each API worker keeps
    # the status records of the last `live_window_s` seconds, at most `live_window_max_records`), the
    # stream's heartbeat, a stream ticket's life, and how many records a slow stream may fall behind
    # before it is closed (its client reconnects and replays from the window).
    live_window_s: float = Field(default=300.0, gt=0, le=86_400)
    live_window_max_records: int = Field(default=100_000, ge=100)
    stream_heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    stream_ticket_ttl_s: int = Field(default=30, ge=1, le=600)
    stream_queue_max: int = Field(default=1000, ge=10)
    # How long a stopping API lets in-flight requests finish (long polls included) before it cancels them.
    api_graceful_shutdown_s: int = Field(default=5, ge=1, le=120)

    # Hostile-input limits: request size, rate limits (GCRA in Redis), browser origins. A limit of N per
    # window lets N requests through at once, then one every window/N seconds.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    rate_limit_window_s: int = Field(default=10, ge=1)
    # Commands (POST deposits, withdrawals, orders), per user and per client IP.
    rate_limit_per_user: int = Field(default=100, ge=1)
    rate_limit_per_ip: int = Field(default=300, ge=1)
    # Every other authenticated route, per user: polling a command's status is a read.
    rate_limit_reads_per_user: int = Field(default=1000, ge=1)
    # Anonymous routes (assets), per client IP; registration and login have their own limits below.
    rate_limit_anonymous_per_ip: int = Field(default=600, ge=1)
    auth_rate_limit_window_s: int = Field(default=300, ge=1)
    # Login and registration attempts: per client IP, and login per username, against password guessing.
    auth_rate_limit_per_ip: int = Field(default=30, ge=1)
    auth_rate_limit_per_username: int = Field(default=10, ge=1)
    cors_allow_origins: list[str] = Field(default_factory=list)

    # Money rules (contract defaults)
    currency: Literal["USD"] = "USD"
    max_cash_amount: Decimal = Decimal("1000000")
    daily_deposit_limit: Decimal = Decimal("10000")
    daily_withdrawal_limit: Decimal = Decimal("5000")

    # Trading: an order's value (quantity x latest price) must lie within these bounds at intake.
    min_order_value: Decimal = Decimal("1")
    max_order_value: Decimal = Decimal("10000")
    # The fee as a fraction of the trade's value (0.001 = 0.1%), charged in cents, rounded up.
    trading_fee_rate: Decimal = Field(default=Decimal("0"), ge=0, lt=Decimal("0.1"))
    # How long the API keeps the asset list and its prices before reading them again.
    asset_cache_ttl_s: float = Field(default=2.0, ge=0)

    # Price feed (`python -m producers.prices`): a bounded random walk, a CSV replay, or nothing.
    price_feed: Literal["random", "replay", "off"] = "random"
    price_tick_interval_s: float = Field(default=2.0, gt=0)
    # The largest step of one tick, in basis points, and how far the walk may stray from its start.
    price_max_step_bps: int = Field(default=50, ge=0, le=10_000)
    price_band: Decimal = Field(default=Decimal("0.5"), gt=0, lt=1)
    price_seed: int | None = None
    # Replay: rows `elapsed_s,asset,price`, published `price_replay_speed` times faster than recorded.
    price_replay_csv: str = "infra/data/prices-sample.csv"
    price_replay_speed: float = Field(default=1.0, gt=0)

    # Consumers
    consumer_graceful_timeout_s: float = Field(default=20.0, gt=0)
    retry_initial_backoff_s: float = Field(default=0.1, gt=0)
    retry_max_backoff_s: float = Field(default=5.0, gt=0)
    # A handler failure that is neither malformed input nor transient (a bug) is tried this many times in
    # all, with the backoff above, then dead-lettered (`handler_error`) and its account quarantined.
    handler_max_attempts: int = Field(default=5, ge=1, le=100)
    # How stale a consumer's in-memory list of quarantined accounts may get before it reads it again.
    quarantine_refresh_s: float = Field(default=1.0, gt=0, le=60)
    # Where a consumer (or the price feed) serves its Prometheus metrics: default its entry in
    # consumers/registry.py; 0 serves none. `make run` and the test fixtures set it per process.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # 127.0.0.1 keeps the metrics on the machine; compose sets 0.0.0.0 so that a scraper can reach them.
    metrics_addr: str = "127.0.0.1"
    # TEST ONLY: the consumers' handlers raise for this account's messages, to exercise the quarantine
    # against real processes. Off by default; refused in production.
    fault_inject_account: str | None = None

    # Benchmark only: when set, each process writes its DynamoDB request counts to this directory
    # (infra/dynamo/request_stats.py). Off by default.
    stats_dir: str | None = None

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool | None = None  # None: JSON unless attached to a terminal

    # Operator CLI: how long it waits for a server before giving up with a one-line error.
    cli_timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _refuse_default_secret_outside_dev(self) -> Settings:
        secret = self.jwt_secret.get_secret_value()
        if self.environment == "production" and (secret == DEFAULT_JWT_SECRET or len(secret) < 32):
            raise ValueError(
                "LEDGERFLOW_JWT_SECRET must be a secret of your own (at least 32 characters) "
                "outside local development and tests"
            )
        return self

    @model_validator(mode="after")
    def _refuse_fault_injection_in_production(self) -> Settings:
        if self.environment == "production" and self.fault_inject_account:
            raise ValueError("LEDGERFLOW_FAULT_INJECT_ACCOUNT is for tests only")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
