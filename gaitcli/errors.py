"""Domain errors. The CLI maps each to one line on stderr; nothing here knows about the CLI."""

from __future__ import annotations

import os
from pathlib import Path


def debug_enabled() -> bool:
    """`gait --debug` (or GAIT_DEBUG=1): let unexpected exceptions through with their traceback."""
    return os.environ.get("GAIT_DEBUG") == "1"


class GaitError(Exception):
    """Base class of every error gait reports to a user as one line."""


class UsageError(GaitError):
    """The command line or an option value is wrong (exit code 2)."""


class ReadError(GaitError):
    """A file could not be read. Always names the file and says what is wrong with it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnsupportedFile(ReadError):
    """A file that is not a gait data file gait reads (a README, an XML setup, ...)."""


class DataError(GaitError):
    """Data that was read but cannot be used (no cycles, missing channels, bad units)."""
