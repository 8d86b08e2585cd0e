"""Turning a Kafka record into a validated envelope, or into a precise reason why it cannot be one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas.envelope import Envelope, RawEnvelope


class MalformedMessage(Exception):
    """A message that no retry can fix: it goes to the dead-letter topic with `code` and `reason`."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_envelope(
    raw: bytes | None, accepted: Mapping[str, type[BaseModel]], *, max_bytes: int
) -> Envelope[Any]:
    """Validates the envelope, then binds its payload to the model registered for its `type`."""
    if raw is None:
        raise MalformedMessage("empty_message", "the message has no value")
    if len(raw) > max_bytes:
        raise MalformedMessage("message_too_large", f"{len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        envelope = RawEnvelope.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise MalformedMessage("invalid_json", _summarise(exc)) from exc
        raise MalformedMessage("invalid_envelope", _summarise(exc)) from exc
    model = accepted.get(envelope.type)
    if model is None:
        raise MalformedMessage(
            "unexpected_type", f"type {envelope.type!r} is not one of {sorted(accepted)} on this topic"
        )
    version = getattr(model, "VERSION", 1)
    if envelope.version != version:
        raise MalformedMessage(
            "unsupported_version",
            f"{envelope.type} version {envelope.version} (this consumer reads {version})",
        )
    try:
        payload = model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise MalformedMessage("invalid_payload", _summarise(exc)) from exc
    return Envelope[Any](**{**envelope.model_dump(exclude={"payload"}), "payload": payload})
