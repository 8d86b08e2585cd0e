"""OpenTelemetry tracing: W3C `traceparent` in Kafka headers joins the HTTP request and the consumer."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

_configured = False


def configure_tracing(service: str) -> None:
    """Installs an SDK tracer provider so spans get real ids; exporters are deployment configuration."""
    global _configured
    if _configured:
        return
    trace.set_tracer_provider(
        TracerProvider(resource=Resource.create({"service.name": f"ledgerflow-{service}"}))
    )
    _configured = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("ledgerflow")


def inject_trace_headers() -> list[tuple[str, bytes]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


def extract_trace_context(headers: Iterable[tuple[str, bytes]]) -> Context:
    carrier = {k.lower(): v.decode(errors="replace") for k, v in headers}
    return propagate.extract(carrier)


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None
