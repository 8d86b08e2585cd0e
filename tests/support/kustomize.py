"""Render a kustomization offline, for the tests (no kustomize binary on these machines).

Only the part of kustomize that infra/deploy/k8s uses: `resources` (files and directories holding a
kustomization), `namespace`, `images` and `patches` as RFC 6902 JSON patches with a `target` (applied
with the `jsonpatch` library). Any other field is refused, so a manifest change that needs more fails
here instead of being rendered wrongly; tests/unit/test_k8s.py also compares the result with
`kubectl kustomize` when a kubectl is installed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

KUSTOMIZATION = "kustomization.yaml"
SUPPORTED_FIELDS = frozenset({"apiVersion", "kind", "resources", "namespace", "images", "patches"})
# Kinds without a namespace among those used here (kustomize asks the API's schema; we know ours).
CLUSTER_SCOPED_KINDS = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
)

Manifest = dict[str, Any]


class UnsupportedKustomization(ValueError):
    """The kustomization uses a field or form this renderer does not implement."""


def load_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def render(directory: Path) -> list[Manifest]:
    """The objects `kustomize build directory` would print (in resource order, not kustomize's)."""
    spec = yaml.safe_load((directory / KUSTOMIZATION).read_text())
    unsupported = set(spec) - SUPPORTED_FIELDS
    if unsupported:
        raise UnsupportedKustomization(f"{directory}: {sorted(unsupported)}")
    objects: list[Manifest] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        objects += render(path) if path.is_dir() else load_documents(path)
    for patch in spec.get("patches", []):
        _apply_patch(objects, directory, patch)
    for image in spec.get("images", []):
        for obj in objects:
            _set_image(obj, image)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED_KINDS:
                obj["metadata"]["namespace"] = spec["namespace"]
    return objects


def _matches(obj: Manifest, target: dict[str, str]) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    wanted = {"group": group, "version": version, "kind": obj["kind"], "name": obj["metadata"]["name"]}
    unsupported = set(target) - set(wanted)
    if unsupported:
        raise UnsupportedKustomization(f"patch target fields {sorted(unsupported)}")
    # kustomize reads each target field as an anchored regular expression.
    return all(re.fullmatch(pattern, wanted[field]) for field, pattern in target.items())


def _apply_patch(objects: list[Manifest], directory: Path, patch: dict[str, Any]) -> None:
    if set(patch) != {"path", "target"}:
        raise UnsupportedKustomization(f"only JSON patches from a file with a target: {patch}")
    operations = yaml.safe_load((directory / patch["path"]).read_text())
    if not isinstance(operations, list):
        raise UnsupportedKustomization(
            f"{patch['path']}: not a JSON patch (strategic merge is not supported)"
        )
    targets = [i for i, obj in enumerate(objects) if _matches(obj, patch["target"])]
    if not targets:
        raise UnsupportedKustomization(f"{patch['path']}: its target matches nothing")
    for i in targets:
        objects[i] = jsonpatch.apply_patch(objects[i], operations)


def _containers(obj: Manifest) -> list[dict[str, Any]]:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _set_image(obj: Manifest, image: dict[str, str]) -> None:
    for container in _containers(obj):
        name, tag = _split_image(container["image"])
        if name == image["name"]:
            new_name = image.get("newName", name)
            new_tag = image.get("newTag", tag)
            container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def _split_image(reference: str) -> tuple[str, str | None]:
    # A colon after the last slash separates the tag (one before it is a registry's port).
    head, _, last = reference.rpartition("/")
    if ":" in last:
        last, _, tag = last.partition(":")
        return (f"{head}/{last}" if head else last), tag
    return reference, None
