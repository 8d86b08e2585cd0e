"""Key layout of trading's items in the single table (the account's own items are in `keys.py`).

- `ASSET#<SYM> / META`     name of one asset: trading reads it to tell an unknown asset from a known one.
- `ASSET#<SYM> / PRICE`    the latest price, written only by a newer tick (the prices consumer).
- `ASSETS / ASSET#<SYM>`   the catalogue: one Query lists every asset, so listing needs no Scan.
- `ACCOUNT#<id> / HOLDING#<SYM>`              what trading settles against (quantity, version).
- `ACCOUNT#<id> / COMMAND#trading#<order id>` the order record, read by id (on trading's outcome record;
                                              `ORDER#<order id>` for orders settled before).
- `ACCOUNT#<id> / ORDERLOG#<placed at>#<id>`  a copy keyed by time, so "newest first" is one Query.
- `ACCOUNT#<id> / POSITION#<SYM>`             the portfolio projection (quantity, average cost, P&L).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

ASSET_META_SK: Final = "META"
ASSET_PRICE_SK: Final = "PRICE"
CATALOGUE_PK: Final = "ASSETS"
CATALOGUE_PREFIX: Final = "ASSET#"
HOLDING_PREFIX: Final = "HOLDING#"
ORDER_PREFIX: Final = "ORDER#"
ORDER_LOG_PREFIX: Final = "ORDERLOG#"
POSITION_PREFIX: Final = "POSITION#"


def asset_pk(symbol: str) -> str:
    return f"ASSET#{symbol}"


def catalogue_sk(symbol: str) -> str:
    return f"{CATALOGUE_PREFIX}{symbol}"


def holding_sk(symbol: str) -> str:
    return f"{HOLDING_PREFIX}{symbol}"


def legacy_order_sk(order_id: uuid.UUID | str) -> str:
    return f"{ORDER_PREFIX}{order_id}"


def order_log_sk(placed_at: datetime, order_id: uuid.UUID | str) -> str:
    # Fixed-width UTC timestamps sort lexicographically: a descending Query is "newest first".
    return f"{ORDER_LOG_PREFIX}{placed_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{order_id}"


def position_sk(symbol: str) -> str:
    return f"{POSITION_PREFIX}{symbol}"
