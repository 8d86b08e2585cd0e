"""Kept for old habits: the benchmark is now the `bench` package (`make bench`, `python -m bench --help`).

.venv/bin/python scripts/bench.py [flags of python -m bench]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
