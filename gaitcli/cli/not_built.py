"""Commands whose issue is still open: they say so and exit 1, they never pretend to work."""

from __future__ import annotations

import sys
from typing import Callable

import typer

COMMANDS = (
    ("benchmark", 4, "LSTM vs Transformer vs Mamba under one protocol, with data-efficiency curves."),
)


def make(name: str, issue: int) -> Callable[[typer.Context], None]:
    def command(ctx: typer.Context) -> None:
        print(f"Error: `gait {name}` is not built yet (issue #{issue}); "
              "see `gait --help` for the commands that work today.", file=sys.stderr)
        raise typer.Exit(1)

    command.__name__ = name
    return command
