"""Key layout of the single table: every access path the system uses, in one place."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from schemas.envelope import derive_event_id

ACCOUNT_PREFIX = "ACCOUNT#"


def account_pk(account_id: str) -> str:
    return f"{ACCOUNT_PREFIX}{account_id}"


def username_pk(username: str) -> str:
    return f"USER#{username.lower()}"


PROFILE_SK = "PROFILE"


def balance_sk(currency: str = "USD") -> str:
    return f"BALANCE#{currency}"


def daily_total_sk(kind: str, day: date) -> str:
    return f"DAILY#{kind}#{day.isoformat()}"


def command_prefix(handler: str) -> str:
    return f"COMMAND#{handler}#"


def command_sk(handler: str, command_id: uuid.UUID) -> str:
    return f"{command_prefix(handler)}{command_id}"


# A command's outcome record carries its id in this attribute, which keys a sparse index (keys only):
# the admin's lookup by command id alone is one Query of that index, not a scan.
COMMAND_INDEX = "command-id"
COMMAND_INDEX_KEY = "outcome_of"


EVENT_PREFIX = "EVENT#"


def event_sk(occurred_at: datetime, event_id: uuid.UUID) -> str:
    # Fixed-width UTC timestamps sort lexicographically, which gives "newest first" for free.
    return f"{EVENT_PREFIX}{occurred_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{event_id}"


def command_record_sk(handler: str, command_id: uuid.UUID, accepted_at: datetime) -> str:
    # A client command's one item: its outcome event, keyed by when the command was accepted and the
    # event's id, which derives from the command's: both known before it settles, so the dedupe check and
    # the status read can name the key. It sorts with the account's other events.
    return event_sk(accepted_at, derive_event_id(command_id, handler))


# Facts about the table itself (which item layouts it may hold), on an item of their own.
TABLE_META_PK = "META"
LAYOUT_SK = "LAYOUT"


def dead_letter_pk(dead_letter_topic: str) -> str:
    return f"DLQ#{dead_letter_topic}"


def redrive_sk(partition: int, offset: int) -> str:
    # Zero-padded so that a Query lists redrives in partition and offset order.
    return f"REDRIVE#{partition:05d}#{offset:020d}"


def quarantine_pk(group: str) -> str:
    # One partition per consumer group: a consumer reads its group's whole quarantine list in one Query.
    return f"QUARANTINE#{group}"


def quarantine_sk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def idempotency_sk(key_digest: str) -> str:
    # The client's key is hashed: it may hold any printable character, and is the client's secret.
    return f"IDEMPOTENCY#{key_digest}"


def revoked_tokens_pk(expiry_day: date) -> str:
    # Partitioned by the day the token expires, so the tokens still worth refusing are a few Queries.
    return f"REVOKED#{expiry_day.isoformat()}"
