"""The committed JSON Schemas (schemas/jsonschema/) against the models: a change that breaks a version
already published needs a new version, and the files are kept up to date (`python -m schemas.export`)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from schemas.catalogue import message_types, version_of
from schemas.compatibility import breaking_changes
from schemas.export import SCHEMA_DIR, expected_files, file_name, json_schema, main

_VERSIONED = re.compile(r"^(?P<type>[A-Za-z]+)\.v(?P<version>[0-9]+)\.json$")


def _committed(name: str) -> dict[str, Any]:
    loaded = json.loads((SCHEMA_DIR / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize("type_name", sorted(message_types()))
def test_the_current_version_reads_what_its_committed_schema_describes(type_name: str) -> None:
    model = message_types()[type_name]
    name = file_name(type_name, version_of(model))
    assert (SCHEMA_DIR / name).is_file(), f"no committed schema {name}: run python -m schemas.export"
    broken = breaking_changes(_committed(name), json_schema(model))
    assert not broken, (
        f"{type_name} v{version_of(model)} changed incompatibly ({'; '.join(broken)}): keep the old "
        f"fields and types, or raise {type_name}.VERSION and run python -m schemas.export"
    )


def test_every_committed_version_belongs_to_a_known_type_and_none_is_skipped() -> None:
    versions: dict[str, set[int]] = {}
    for path in SCHEMA_DIR.glob("*.v*.json"):
        match = _VERSIONED.match(path.name)
        assert match, f"unexpected file {path.name}"
        versions.setdefault(match["type"], set()).add(int(match["version"]))
    types = message_types()
    assert set(versions) == set(types), "a type without schema files, or files of an unknown type"
    for type_name, found in versions.items():
        # Older versions stay committed: their stored events and readers rely on them.
        assert found == set(range(1, version_of(types[type_name]) + 1)), (type_name, sorted(found))


def test_the_committed_files_are_up_to_date() -> None:
    assert main(["--check"]) == 0, "run python -m schemas.export and commit schemas/jsonschema/"
    assert set(expected_files()) <= {p.name for p in SCHEMA_DIR.glob("*.json")}


def test_the_checker_catches_removed_renamed_retyped_and_newly_required_fields() -> None:
    old = _committed(file_name("DepositSettled", 1))
    assert breaking_changes(old, copy.deepcopy(old)) == []

    optional_added = copy.deepcopy(old)
    optional_added["properties"]["note"] = {"type": "string"}
    assert breaking_changes(old, optional_added) == []

    renamed = copy.deepcopy(old)
    renamed["properties"]["balance"] = renamed["properties"].pop("balance_after")
    renamed["required"] = ["command_id", "amount", "balance"]
    assert breaking_changes(old, renamed) == [
        "balance_after was removed (or renamed)",
        "balance is newly required",
    ]

    retyped = copy.deepcopy(old)
    retyped["properties"]["amount"] = {"type": "number"}
    (change,) = breaking_changes(old, retyped)
    assert change.startswith("amount changed type")


def test_nested_models_are_compared_through_their_refs() -> None:
    def schema(leg_type: str) -> dict[str, Any]:
        return {
            "$defs": {"Leg": {"properties": {"cash": {"type": leg_type}}, "required": ["cash"]}},
            "properties": {"leg": {"$ref": "#/$defs/Leg"}},
            "required": ["leg"],
        }

    assert breaking_changes(schema("string"), schema("string")) == []
    (change,) = breaking_changes(schema("string"), schema("number"))
    assert change.startswith("leg changed type")
