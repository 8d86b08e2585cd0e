"""The intake's cheap-per-request choices: async dependencies only, sampled tracing, API workers."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler
from starlette.routing import BaseRoute

from api.app import create_app
from infra.local.processes import app_processes
from infra.settings import Settings
from infra.telemetry import otlp_configured, sampler_from_env


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # how FastAPI keeps an included router
        if included is not None:
            yield from _api_routes(included.routes)


def test_every_endpoint_and_dependency_is_async() -> None:
    """FastAPI runs a plain `def` in its thread pool: a thread hop per request for each one."""
    app = create_app(Settings())
    checked = 0
    for route in _api_routes(app.routes):
        for call in _calls(route.dependant):
            target = call if inspect.isroutine(call) else type(call).__call__
            assert inspect.iscoroutinefunction(target), f"{route.path}: {call!r} is not async"
            checked += 1
    assert checked > 20


def _describe(sampler: Sampler) -> str:
    return str(cast(Any, sampler).get_description())  # untyped in the SDK


def test_traces_are_sampled_by_the_standard_variables() -> None:
    default = sampler_from_env({})
    assert isinstance(default, ParentBased) and "0.01" in _describe(default)
    assert sampler_from_env({"OTEL_TRACES_SAMPLER": "always_on"}) is ALWAYS_ON
    ratio = sampler_from_env(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    )
    assert "0.5" in _describe(ratio)
    for bad in ("lots", "2"):
        fallback = sampler_from_env({"OTEL_TRACES_SAMPLER_ARG": bad})
        assert "0.01" in _describe(fallback)


def test_the_api_runs_the_configured_workers_without_an_access_log() -> None:
    api = next(p for p in app_processes(8123, api_workers=3) if p.name == "api")
    assert "--no-access-log" in api.argv
    assert api.argv[api.argv.index("--workers") + 1] == "3"
    default = next(p for p in app_processes(8123) if p.name == "api")
    assert default.argv[default.argv.index("--workers") + 1] == str(Settings().api_workers)


@pytest.mark.parametrize(
    ("env", "exported"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ],
)
def test_spans_are_exported_only_where_an_otlp_endpoint_is_named(env: dict[str, str], exported: bool) -> None:
    # compose passes `${OTEL_EXPORTER_OTLP_ENDPOINT:-}`: an empty value must mean "no exporter".
    assert otlp_configured(env) is exported
