"""One deposit through the API and the ledger in this process, every span kept by the in-memory exporter.

Run by tests/integration/test_tracing.py as `python -m tests.support.one_deposit_trace` with the
environment of a system of its own (servers provisioned, no apps running) and every trace sampled; it
prints the spans as JSON lines. A process of its own, because the tracer provider, the instrumentations
and the metrics registry are process-wide.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.app import create_app
from consumers.ledger.app import app as ledger_app
from tests.support.api import register


def _as_dict(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "links": [format(link.context.span_id, "016x") for link in span.links],
        "attributes": {k: v for k, v in (span.attributes or {}).items() if isinstance(v, str | int)},
    }


async def main() -> None:
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "the ledger's runtime installs the SDK's provider"
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    api = create_app()
    async with ledger_app.lifespan_context(), api.router.lifespan_context(api):
        await ledger_app.start()
        try:
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=30) as client:
                user = await register(client)
                exporter.clear()
                command_id = await user.deposit("25.00")
                status: dict[str, Any] = {}
                for _ in range(30):
                    status = (await user.get(f"/v1/commands/{command_id}", wait=2)).json()
                    if status["status"] != "accepted":
                        break
                assert status["status"] == "settled", status
        finally:
            await ledger_app.stop()
    for span in exporter.get_finished_spans():
        sys.stdout.write(json.dumps(_as_dict(span)) + "\n")
    sys.stdout.write(json.dumps({"command_id": command_id}) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
