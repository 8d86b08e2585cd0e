"""Writes the JSON Schema of every message type of the contract, one file per type and version:
`schemas/jsonschema/<Type>.v<N>.json` (the payload; the envelope around it is `Envelope.json`).

    python -m schemas.export            # write the current versions' files
    python -m schemas.export --check    # exit 1 if a file is missing or out of date

A file of an older version stays: it is what that version's stored events and readers rely on.
tests/unit/test_message_schemas.py fails on a change that breaks a committed version
(schemas/compatibility.py) and on a file that is not up to date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel

from schemas.catalogue import message_types, version_of
from schemas.envelope import RawEnvelope

SCHEMA_DIR: Final = Path(__file__).resolve().parent / "jsonschema"
ENVELOPE_FILE: Final = "Envelope.json"


def file_name(type_name: str, version: int) -> str:
    return f"{type_name}.v{version}.json"


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    # Validation mode: what a reader accepts (decimal strings in, as the contract says).
    return model.model_json_schema(mode="validation")


def rendered(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content, for the current version of every message type and the envelope."""
    files = {
        file_name(name, version_of(model)): rendered(json_schema(model))
        for name, model in sorted(message_types().items())
    }
    files[ENVELOPE_FILE] = rendered(json_schema(RawEnvelope))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = [
        name
        for name, content in expected_files().items()
        if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text() != content
    ]
    if args.check:
        for name in stale:
            sys.stderr.write(f"{SCHEMA_DIR / name} is missing or out of date: run python -m schemas.export\n")
        return 1 if stale else 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, content in expected_files().items():
        if name in stale:
            (SCHEMA_DIR / name).write_text(content)
            sys.stdout.write(f"wrote {SCHEMA_DIR / name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
