"""`python -m producers.prices`: the price feed until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio

from producers.prices.app import app


def main() -> None:
    asyncio.run(app.run())


if __name__ == "__main__":
    main()
