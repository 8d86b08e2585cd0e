"""Reference data shipped with the project: the tradable assets (`assets.json`) and a price recording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from schemas.trading import AssetInfo

DATA_DIR: Final = Path(__file__).parent
ASSETS_FILE: Final = DATA_DIR / "assets.json"


def load_assets(path: Path = ASSETS_FILE) -> list[AssetInfo]:
    """The assets in listing order (roughly by market capitalisation, as users expect)."""
    return [AssetInfo.model_validate(row) for row in json.loads(path.read_text())]


def project_file(path: str | Path) -> Path:
    """A path as given if absolute or present from here; otherwise relative to the project's root."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return DATA_DIR.parent.parent / candidate
