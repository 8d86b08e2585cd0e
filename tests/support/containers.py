"""The servers as containers, for machines with a Docker engine (CI runners with Docker, laptops)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs
from testcontainers.kafka import KafkaContainer
from testcontainers.redis import RedisContainer

from infra.local.services import ServiceEndpoints


@contextmanager
def container_services() -> Iterator[ServiceEndpoints]:
    with ExitStack() as stack:
        kafka = stack.enter_context(KafkaContainer("apache/kafka:3.9.1").with_kraft())
        redis = stack.enter_context(RedisContainer("redis:7-alpine"))
        dynamodb = stack.enter_context(
            DockerContainer("amazon/dynamodb-local:2.6.1")
            .with_command("-jar DynamoDBLocal.jar -sharedDb -inMemory")
            .with_exposed_ports(8000)
        )
        wait_for_logs(dynamodb, "CorsParams")
        yield ServiceEndpoints(
            kafka_bootstrap_servers=kafka.get_bootstrap_server(),
            dynamodb_endpoint_url=f"http://{dynamodb.get_container_host_ip()}:{dynamodb.get_exposed_port(8000)}",
            redis_url=f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0",
        )
