"""OpenTelemetry tracing: W3C `traceparent` in Kafka headers joins the HTTP request and the consumer.

The spans come from the standard instrumentations where they exist: FastAPI's for the intake's requests
(api/app.py), aiobotocore's for every DynamoDB call, Redis's for every Redis command, FastStream's
telemetry middleware for each fetched batch (consumers/common/runtime.py). Ledgerflow adds what none of
them covers: a span per Kafka publish (infra/kafka/producer.py: the API and the consumers publish with
aiokafka directly), a span per command a consumer settles, child of the request that accepted it, and a
span per settlement, child of its first command's and linked to the others'. So one deposit is one
trace: POST, publish, settle, the DynamoDB transaction, the published event.

Traces are sampled by the standard variables `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`; the
default here is `parentbased_traceidratio` at 0.01. Every request still gets a trace id, which the logs
carry and `traceparent` passes on to the consumers (whose parent-based sampler follows the intake's
decision): only the recording of spans is sampled, and with it their cost on the hot path. Spans leave
the process through the OTLP exporter (HTTP/protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, configured by the exporter's own standard variables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

DEFAULT_SAMPLER = "parentbased_traceidratio"
DEFAULT_SAMPLER_RATIO = 0.01
_RATIO_SAMPLERS: dict[str, Callable[[float], Sampler]] = {
    "traceidratio": TraceIdRatioBased,
    "parentbased_traceidratio": ParentBasedTraceIdRatio,
}
_FIXED_SAMPLERS: dict[str, Sampler] = {
    "always_on": ALWAYS_ON,
    "always_off": ALWAYS_OFF,
    "parentbased_always_on": DEFAULT_ON,
    "parentbased_always_off": DEFAULT_OFF,
}
_OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_API_UNTRACED = "/v1/health/.*,/metrics,/v1/stream"
_log = logging.getLogger(__name__)
_configured = False


def sampler_from_env(env: Mapping[str, str] = os.environ) -> Sampler:
    """The sampler `OTEL_TRACES_SAMPLER`/`_ARG` name (the SDK's own names); ours by default."""
    name = env.get("OTEL_TRACES_SAMPLER", DEFAULT_SAMPLER).strip().lower()
    if name in _FIXED_SAMPLERS:
        return _FIXED_SAMPLERS[name]
    if name not in _RATIO_SAMPLERS:
        _log.warning("unknown OTEL_TRACES_SAMPLER %r; using %s", name, DEFAULT_SAMPLER)
        name = DEFAULT_SAMPLER
    raw = env.get("OTEL_TRACES_SAMPLER_ARG")
    try:
        ratio = DEFAULT_SAMPLER_RATIO if raw is None else float(raw)
    except ValueError:
        _log.warning("OTEL_TRACES_SAMPLER_ARG %r is not a number; using %s", raw, DEFAULT_SAMPLER_RATIO)
        ratio = DEFAULT_SAMPLER_RATIO
    if not 0.0 <= ratio <= 1.0:
        _log.warning("OTEL_TRACES_SAMPLER_ARG %r is not in [0, 1]; using %s", raw, DEFAULT_SAMPLER_RATIO)
        ratio = DEFAULT_SAMPLER_RATIO
    return _RATIO_SAMPLERS[name](ratio)


def otlp_configured(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard variables name an OTLP endpoint (an empty value names none)."""
    return any(env.get(name, "").strip() for name in _OTLP_ENDPOINT_VARIABLES)


def configure_tracing(service: str) -> None:
    """Installs the SDK's tracer provider (sampled, exporting over OTLP when configured) and the
    instrumentations of the libraries every process uses; once per process."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"ledgerflow-{service}"}), sampler=sampler_from_env()
    )
    if otlp_configured():
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    AiobotocoreInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)
    _configured = True


def instrument_api(app: Any) -> None:
    """FastAPI's instrumentation, outermost: a server span per request named by its route template.
    Health probes, the metrics scrape and event streams (a span as long as the stream) get none, nor do
    the ASGI send and receive events (a span each per request otherwise)."""
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", _API_UNTRACED),
        exclude_spans=["receive", "send"],
    )


def tracer() -> trace.Tracer:
    return trace.get_tracer("ledgerflow")


def publish_span(topic: str, messages: int) -> AbstractContextManager[trace.Span]:
    """A producer span around a publish (aiokafka has no instrumentation here that would not also wrap
    every consumer's fetch); the headers injected inside it make it the consumers' parent."""
    return tracer().start_as_current_span(
        f"{topic} publish",
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.batch.message_count": messages,
        },
    )


def inject_trace_headers() -> list[tuple[str, bytes]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


def extract_trace_context(headers: Iterable[tuple[str, bytes]]) -> Context:
    carrier = {k.lower(): v.decode(errors="replace") for k, v in headers}
    return propagate.extract(carrier)


def settlement_span(group: str, commands: Sequence[trace.Span]) -> AbstractContextManager[trace.Span]:
    """The span of one settlement of `commands` (their spans): the child of the first command's, so a
    lone command's trace runs on into its DynamoDB transaction and published events, and linked to the
    others'."""
    first, *others = commands
    return tracer().start_as_current_span(
        f"{group} settle",
        context=trace.set_span_in_context(first),
        links=[trace.Link(span.get_span_context()) for span in others],
        attributes={"ledgerflow.commands": len(commands)},
    )


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None
