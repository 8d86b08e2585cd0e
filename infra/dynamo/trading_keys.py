"""Key layout of trading's items in the single table (the account's own items are in `keys.py`).

- `ASSET#<SYM> / META`     name of one asset: trading reads it to tell an unknown asset from a known one.
- `ASSET#<SYM> / PRICE`    the latest price, written only by a newer tick (the prices consumer).
- `ASSETS / ASSET#<SYM>`   the catalogue: one Query lists every asset, so listing needs no Scan.
- `ACCOUNT#<id> / HOLDING#<SYM>`              what trading settles against (quantity, version).
- `ACCOUNT#<id> / EVENT#<placed at>#<event id>` the order, on its command's record (`keys.py`); orders
                                              settled before keep theirs on `COMMAND#trading#<order id>` or,
                                              earlier, `ORDER#<order id>`.
- `ACCOUNT#<id> / POSITION#<SYM>`             the portfolio projection (quantity, average cost, P&L).
"""

from __future__ import annotations

import uuid
from typing import Final

ASSET_META_SK: Final = "META"
ASSET_PRICE_SK: Final = "PRICE"
CATALOGUE_PK: Final = "ASSETS"
CATALOGUE_PREFIX: Final = "ASSET#"
HOLDING_PREFIX: Final = "HOLDING#"
ORDER_PREFIX: Final = "ORDER#"
POSITION_PREFIX: Final = "POSITION#"


def asset_pk(symbol: str) -> str:
    return f"ASSET#{symbol}"


def catalogue_sk(symbol: str) -> str:
    return f"{CATALOGUE_PREFIX}{symbol}"


def holding_sk(symbol: str) -> str:
    return f"{HOLDING_PREFIX}{symbol}"


def legacy_order_sk(order_id: uuid.UUID | str) -> str:
    return f"{ORDER_PREFIX}{order_id}"


def position_sk(symbol: str) -> str:
    return f"{POSITION_PREFIX}{symbol}"
