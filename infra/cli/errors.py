"""The one error the CLI shows as a single line and exits non-zero with."""

from __future__ import annotations


class CliError(Exception):
    """A failure an operator can act on; `exit_code` is what the process exits with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
