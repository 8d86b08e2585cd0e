"""The audit trail: structured records of who did what, when, from where, with what result.

Records are ordinary log lines tagged `audit=true`, so they travel with the service's logs and can be
routed apart by any log shipper. Never pass a password, token or secret here.
"""

from __future__ import annotations

from typing import Any

import structlog

_log = structlog.get_logger("audit")


def audit(action: str, *, result: str, **fields: Any) -> None:
    _log.info(action, audit=True, result=result, **fields)
