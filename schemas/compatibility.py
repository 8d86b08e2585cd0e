"""Whether a message's current JSON Schema still reads what its committed schema of the same version
described: a field removed or renamed, a new required field, or a field whose type changed breaks the
readers (and the stored events) of that version, and needs a new version instead."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
# What a field's type is made of; titles, descriptions, examples and bounds are not compared.
_SHAPE_KEYS = ("type", "format", "const", "enum", "pattern")


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Each incompatibility of `new` with `old`, as a sentence; empty when `new` reads `old`'s messages."""
    return _object_changes(old, old, new, new, path="")


def _object_changes(old: Schema, old_root: Schema, new: Schema, new_root: Schema, path: str) -> list[str]:
    found: list[str] = []
    old_props: Schema = old.get("properties", {})
    new_props: Schema = new.get("properties", {})
    old_required = set(old.get("required", ()))
    new_required = set(new.get("required", ()))
    for name in sorted(old_props):
        where = f"{path}{name}"
        if name not in new_props:
            found.append(f"{where} was removed (or renamed)")
            continue
        old_shape = _shape(old_props[name], old_root)
        new_shape = _shape(new_props[name], new_root)
        if old_shape != new_shape:
            found.append(f"{where} changed type: {old_shape} -> {new_shape}")
    for name in sorted(new_required - old_required):
        found.append(f"{path}{name} is newly required")
    return found


def _shape(prop: Schema, root: Schema, depth: int = 0) -> Any:
    """A comparable description of a field's type, with `$ref`s resolved."""
    if depth > 20:
        return "..."
    ref = prop.get("$ref")
    if isinstance(ref, str):
        prop = _resolve(ref, root)
    shape: dict[str, Any] = {key: prop[key] for key in _SHAPE_KEYS if key in prop}
    for key in ("anyOf", "oneOf", "allOf"):
        if key in prop:
            shape[key] = sorted(repr(_shape(p, root, depth + 1)) for p in prop[key])
    if "items" in prop:
        shape["items"] = _shape(prop["items"], root, depth + 1)
    if "properties" in prop:
        shape["properties"] = {
            name: _shape(p, root, depth + 1) for name, p in sorted(prop["properties"].items())
        }
        shape["required"] = sorted(prop.get("required", ()))
    return shape


def _resolve(ref: str, root: Schema) -> Schema:
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    assert isinstance(target, dict), ref
    return target
