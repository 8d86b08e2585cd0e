"""OpenTelemetry tracing: W3C `traceparent` in Kafka headers joins the HTTP request and the consumer.

Traces are sampled by the standard variables `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`; the
default here is `parentbased_traceidratio` at 0.01. Every request still gets a trace id, which the logs
carry and `traceparent` passes on to the consumers (whose parent-based sampler follows the intake's
decision): only the recording of spans is sampled, and with it their cost on the hot path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
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


def configure_tracing(service: str) -> None:
    """Installs an SDK tracer provider so spans get real ids; exporters are deployment configuration."""
    global _configured
    if _configured:
        return
    trace.set_tracer_provider(
        TracerProvider(
            resource=Resource.create({"service.name": f"ledgerflow-{service}"}), sampler=sampler_from_env()
        )
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
