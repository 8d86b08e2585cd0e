"""Offline checks of the Kubernetes manifests (infra/deploy/k8s): there is no cluster here.

1. The base and the `local` overlay are rendered (tests/support/kustomize.py, compared with `kubectl
   kustomize` when a kubectl is installed) and every object validates against its schema: Kubernetes
   objects against the strict JSON schemas of the PyPI package kubernetes-validate (unknown fields
   refused, as `kubectl apply` does), at the oldest and the newest version checked; KEDA's ScaledObject
   against the JSON schema of the pydantic model that the PyPI package cloudcoil-models-keda generates
   from KEDA's CRD, made strict the same way. Both packages are Apache-2.0 and pinned by uv.lock
   (kubernetes-validate 1.37.0: Kubernetes 1.x schemas up to 1.37; cloudcoil-models-keda 2.16.1.0:
   KEDA 2.16's CRDs).
2. Consistency with the code: every app of the registry (consumers/registry.py) is a Deployment running
   its app, serving its metrics where Prometheus and the probes can reach them; every consumer has a
   PodDisruptionBudget and a ScaledObject on its group's lag and topics, capped at their partition count
   as infra/kafka/topics.py computes it from the ConfigMap; every environment variable is a setting; every
   command runs a module of this repo.
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from consumers.registry import APPS, CONSUMERS, AppSpec
from infra.kafka.topics import partitions_for
from infra.settings import Settings
from tests.support.deployment import (
    API,
    API_PORT,
    METRICS_ADDR,
    METRICS_ADDR_SETTING,
    METRICS_PORT,
    METRICS_PORT_SETTING,
    PRICE_FEED,
    ROOT,
    assert_runs_a_module_of_this_repo,
    assert_runs_app,
)
from tests.support.kustomize import Manifest, render

K8S = ROOT / "infra" / "deploy" / "k8s"
BASE = K8S / "base"
LOCAL = K8S / "overlays" / "local"
KUSTOMIZATIONS = {"base": BASE, "local": LOCAL}
# The oldest Kubernetes the manifests claim to work on, and the newest schema the package has.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
IMAGE = "ledgerflow"
CONFIG_MAP = "ledgerflow-config"
# Made by the operator in a real deployment (README), so absent from the base; overlays may supply it.
OPERATOR_SECRET = "ledgerflow-secrets"
SETTINGS_PREFIX = "LEDGERFLOW_"
# The consumers' runtime resets a new group to the earliest offset (consumers/common/runtime.py).
OFFSET_RESET = "earliest"


# --------------------------------------------------------------------------------------------- helpers


@functools.cache
def _rendered(name: str) -> tuple[Manifest, ...]:
    return tuple(render(KUSTOMIZATIONS[name]))


@pytest.fixture(params=sorted(KUSTOMIZATIONS))
def objects(request: pytest.FixtureRequest) -> list[Manifest]:
    # A deep copy: a test that edits an object must not change what the next one sees.
    return copy.deepcopy(list(_rendered(request.param)))


def _one(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _all(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def _pod(workload: Manifest) -> dict[str, Any]:
    pod = workload["spec"]["template"]["spec"]
    assert isinstance(pod, dict)
    return pod


def _our_containers(objects: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    """Every container that runs the ledgerflow image, with its workload."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            for container in _pod(obj)["containers"]:
                if container["image"].split(":", 1)[0] == IMAGE:
                    yield obj, container


def _selects(selector: dict[str, str], workload: Manifest) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


def _config(objects: list[Manifest]) -> dict[str, str]:
    data = _one(objects, "ConfigMap", CONFIG_MAP)["data"]
    assert isinstance(data, dict)
    return data


def _settings(objects: list[Manifest], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings every process of this rendering starts with (the operator's Secret stood in for)."""
    for key in list(os.environ):
        if key.startswith(SETTINGS_PREFIX):
            monkeypatch.delenv(key)
    env = dict(_config(objects))
    secrets = [o for o in _all(objects, "Secret") if o["metadata"]["name"] == OPERATOR_SECRET]
    env.update(secrets[0]["stringData"] if secrets else {"LEDGERFLOW_JWT_SECRET": "x" * 48})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def _strict(schema: Any) -> Any:
    """`schema` with unknown properties refused wherever it lists the known ones."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def _scaled_object_validator() -> jsonschema.protocols.Validator:
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    schema = _strict(ScaledObject.model_json_schema(by_alias=True))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _validate(obj: Manifest, version: str) -> None:
    if obj["apiVersion"].startswith("keda.sh/"):
        assert obj["kind"] == "ScaledObject", f"no schema for KEDA's {obj['kind']}"
        errors = list(_scaled_object_validator().iter_errors(obj))
        assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    else:
        kubernetes_validate.validate(obj, version, strict=True)


# ------------------------------------------------------------------------------------ schema validation


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_matches_its_schema(objects: list[Manifest], version: str) -> None:
    failures = []
    for obj in objects:
        try:
            _validate(obj, version)
        except (kubernetes_validate.ValidationError, AssertionError) as error:
            failures.append(f"{obj['kind']} {obj['metadata']['name']}: {error}")
    assert not failures, "\n".join(failures)


def test_the_schemas_refuse_what_the_api_server_would() -> None:
    # Guard against validation that accepts anything (a lax schema, a kind that is never checked).
    objects = copy.deepcopy(list(_rendered("local")))
    deployment = _one(objects, "Deployment", "ledger")
    _pod(deployment)["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(deployment, K8S_VERSIONS[0])
    scaled = _one(objects, "ScaledObject", "ledger")
    _validate(scaled, K8S_VERSIONS[0])
    scaled["spec"]["maxReplicaCounts"] = 3
    with pytest.raises(AssertionError, match="maxReplicaCounts"):
        _validate(scaled, K8S_VERSIONS[0])
    scaled = _one(objects, "ScaledObject", "trading")
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 200  # metadata values are strings
    with pytest.raises(AssertionError):
        _validate(scaled, K8S_VERSIONS[0])


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_the_renderer_agrees_with_kubectl_kustomize(name: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (its `kustomize` needs no cluster)")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZATIONS[name])], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    theirs = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]

    def key(obj: Manifest) -> tuple[str, str, str]:
        return obj["apiVersion"], obj["kind"], obj["metadata"]["name"]

    assert sorted(theirs, key=key) == sorted(_rendered(name), key=key)


# ------------------------------------------------------------------------------------ the processes


def test_the_api_is_a_deployment_with_service_pdb_and_hpa(objects: list[Manifest]) -> None:
    deployment = _one(objects, "Deployment", API)
    (container,) = _pod(deployment)["containers"]
    assert (
        container["command"][:2] == ["uvicorn", "api.app:create_app"] and "--factory" in container["command"]
    )
    assert container["command"][container["command"].index("--port") + 1] == str(API_PORT)
    assert {"name": "http", "containerPort": API_PORT} in container["ports"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v1/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/health/ready"
    service = _one(objects, "Service", API)
    assert _selects(service["spec"]["selector"], deployment)
    hpa = _one(objects, "HorizontalPodAutoscaler", API)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": API}
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(API_PORT)


@pytest.mark.parametrize("app", APPS.values(), ids=lambda a: a.name)
def test_every_app_runs_its_module_and_serves_reachable_metrics(
    objects: list[Manifest], app: AppSpec
) -> None:
    deployment = _one(objects, "Deployment", app.name)
    (container,) = _pod(deployment)["containers"]
    assert_runs_app(container["command"], app)
    assert {"name": "metrics", "containerPort": METRICS_PORT} in container["ports"]
    assert {"name": METRICS_PORT_SETTING, "value": str(METRICS_PORT)} in container["env"]
    assert {"name": METRICS_ADDR_SETTING, "value": METRICS_ADDR} in container["env"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("consumer", CONSUMERS.values(), ids=lambda c: c.name)
def test_every_consumer_runs_its_app_probed_on_its_metrics(
    objects: list[Manifest], consumer: AppSpec
) -> None:
    (container,) = _pod(_one(objects, "Deployment", consumer.name))["containers"]
    assert container["command"] == ["faststream", "run", consumer.app]
    # A consumer serves nothing but its metrics: the probes ask whether the process answers.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, probe


def test_the_price_feed_runs_alone(objects: list[Manifest]) -> None:
    deployment = _one(objects, "Deployment", PRICE_FEED)
    # Two feeds would publish two walks of the same assets.
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    autoscalers = [*_all(objects, "HorizontalPodAutoscaler"), *_all(objects, "ScaledObject")]
    assert PRICE_FEED not in {a["spec"]["scaleTargetRef"]["name"] for a in autoscalers}


def test_provisioning_is_a_job(objects: list[Manifest]) -> None:
    job = _one(objects, "Job", "provision")
    (container,) = _pod(job)["containers"]
    assert container["command"] == ["python", "-m", "infra.provision"]
    assert _pod(job)["restartPolicy"] in ("OnFailure", "Never")


def test_every_workload_is_known_and_runs_a_module_of_this_repo(objects: list[Manifest]) -> None:
    ours = {obj["metadata"]["name"] for obj, _ in _our_containers(objects)}
    assert ours == {API, "provision", *APPS}
    for obj, container in _our_containers(objects):
        assert_runs_a_module_of_this_repo(container["command"], f"{obj['kind']} {obj['metadata']['name']}")


def test_every_long_running_process_has_probes_resources_and_a_budget(objects: list[Manifest]) -> None:
    budgets = _all(objects, "PodDisruptionBudget")
    for obj, container in _our_containers(objects):
        name = obj["metadata"]["name"]
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() and "memory" in resources["limits"], name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert _pod(obj)["securityContext"]["runAsNonRoot"] is True, name
        if obj["kind"] != "Deployment" or name == PRICE_FEED:
            continue  # a Job, and the single feed that is replaced, not drained
        assert "livenessProbe" in container and "readinessProbe" in container, name
        named_ports = {port["name"] for port in container["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] in named_ports, f"{name}: {probe}"
        covering = [b for b in budgets if _selects(b["spec"]["selector"]["matchLabels"], obj)]
        assert len(covering) == 1, f"{name}: {len(covering)} PodDisruptionBudgets"


def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(objects: list[Manifest]) -> None:
    # An apply that sets `replicas` would undo what the HPA or KEDA decided.
    for name in (API, *CONSUMERS):
        assert "replicas" not in _one(objects, "Deployment", name)["spec"], name


def test_consumers_outlast_their_graceful_shutdown(
    objects: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    graceful = _settings(objects, monkeypatch).consumer_graceful_timeout_s
    for name in CONSUMERS:
        grace = _pod(_one(objects, "Deployment", name))["terminationGracePeriodSeconds"]
        assert grace > graceful, f"{name}: the kubelet kills it before it has committed"


# --------------------------------------------------------------------------------- KEDA: lag scaling


@pytest.mark.parametrize("consumer", CONSUMERS.values(), ids=lambda c: c.name)
def test_every_consumer_group_scales_on_its_lag_within_its_partitions(
    objects: list[Manifest], consumer: AppSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(objects, monkeypatch)
    config = _config(objects)
    scaled = [
        o for o in _all(objects, "ScaledObject") if o["spec"]["scaleTargetRef"]["name"] == consumer.name
    ]
    assert len(scaled) == 1, f"{consumer.name}: {len(scaled)} ScaledObjects"
    spec = scaled[0]["spec"]
    _one(objects, "Deployment", consumer.name)  # what it scales exists
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"

    triggers = spec["triggers"]
    assert {t["type"] for t in triggers} == {"kafka"}
    metadata = [t["metadata"] for t in triggers]
    assert sorted(m["topic"] for m in metadata) == sorted(consumer.reads)
    for m in metadata:
        # The registry's name is the consumer group.
        assert m["consumerGroup"] == consumer.name
        # One message stuck in a partition (retried, about to be quarantined) must not scale the group up.
        assert m["excludePersistentLag"] == "true"
        assert m.get("allowIdleConsumers", "false") == "false"
        assert m["offsetResetPolicy"] == OFFSET_RESET
        assert int(m["lagThreshold"]) > 0
        # The brokers are the ones the consumer itself uses (KEDA reads the target's environment).
        assert m["bootstrapServersFromEnv"] == "LEDGERFLOW_KAFKA_BOOTSTRAP_SERVERS"
        assert m["bootstrapServersFromEnv"] in config
    # KEDA computes replicas per trigger, at most its topic's partitions; the busiest trigger wins.
    cap = max(partitions_for(topic, settings) for topic in consumer.reads)
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= cap, (
        f"{consumer.name}: maxReplicaCount {spec['maxReplicaCount']} > {cap} partitions"
    )


def test_only_consumers_are_scaled_by_keda(objects: list[Manifest]) -> None:
    targets = sorted(o["spec"]["scaleTargetRef"]["name"] for o in _all(objects, "ScaledObject"))
    assert targets == sorted(CONSUMERS)


# ------------------------------------------------------------------------------ configuration


def test_environment_is_made_of_real_settings(
    objects: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings ignores unknown LEDGERFLOW_* variables, so a misspelt name would be silently dropped.
    names = set(_config(objects))
    names |= {key for secret in _all(objects, "Secret") for key in secret.get("stringData", {})}
    names |= {env["name"] for _, container in _our_containers(objects) for env in container.get("env", [])}
    fields = set(Settings.model_fields)
    unknown = {
        n
        for n in names
        if n.startswith(SETTINGS_PREFIX) and n.removeprefix(SETTINGS_PREFIX).lower() not in fields
    }
    assert not unknown, f"not settings: {sorted(unknown)}"
    settings = _settings(objects, monkeypatch)  # the production checks (JWT secret) pass
    assert settings.environment == "production"
    assert settings.kafka_enable_idempotence is True


def test_every_container_reads_the_config_map_and_the_secret(objects: list[Manifest]) -> None:
    config_maps = {o["metadata"]["name"] for o in _all(objects, "ConfigMap")}
    secrets = {o["metadata"]["name"] for o in _all(objects, "Secret")} | {OPERATOR_SECRET}
    for obj, container in _our_containers(objects):
        sources = container["envFrom"]
        assert {"configMapRef": {"name": CONFIG_MAP}} in sources, obj["metadata"]["name"]
        assert {"secretRef": {"name": OPERATOR_SECRET}} in sources, obj["metadata"]["name"]
        for source in sources:
            ref = source.get("configMapRef") or source.get("secretRef")
            assert ref["name"] in (config_maps if "configMapRef" in source else secrets)


def test_no_secret_in_the_config_map(objects: list[Manifest]) -> None:
    for key in _config(objects):
        assert not any(word in key for word in ("SECRET", "PASSWORD", "TOKEN")), key


def test_the_base_ships_no_secret() -> None:
    assert not _all(list(_rendered("base")), "Secret")


def test_the_local_overlay_is_complete_and_tagged(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = list(_rendered("local"))
    images = {container["image"] for _, container in _our_containers(objects)}
    assert images == {f"{IMAGE}:local"}
    namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
    assert namespaces == {_one(objects, "Namespace", "ledgerflow")["metadata"]["name"]}
    # Every server the settings name runs in the overlay, behind a Service of that name.
    settings = _settings(objects, monkeypatch)
    services = {o["metadata"]["name"]: o for o in _all(objects, "Service")}
    endpoints = [
        *settings.kafka_bootstrap_servers.split(","),
        urlsplit(settings.dynamodb_endpoint_url or "").netloc,
        urlsplit(settings.redis_url).netloc,
    ]
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        assert host in services, f"no Service {host}"
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, endpoint


def test_manifest_files_are_all_used() -> None:
    # A manifest nobody lists is never applied.
    listed: set[Path] = set()
    for directory in KUSTOMIZATIONS.values():
        spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
        listed |= {(directory / r).resolve() for r in spec.get("resources", [])}
        listed |= {(directory / p["path"]).resolve() for p in spec.get("patches", [])}
    files = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert files <= listed, sorted(str(f.relative_to(K8S)) for f in files - listed)
