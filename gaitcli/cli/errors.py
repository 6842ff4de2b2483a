"""Domain errors to one line on stderr and an exit code: done once, for every command."""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

from gaitcli.errors import GaitError, UsageError, debug_enabled

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
T = TypeVar("T")


def run_mapped(call: Callable[[], T]) -> T:
    """Run ``call``; a GaitError becomes 'Error: ...' on stderr and exit 1 (usage errors: 2)."""
    import typer

    try:
        return call()
    except GaitError as exc:
        if debug_enabled():
            raise
        print(f"Error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED) from None
