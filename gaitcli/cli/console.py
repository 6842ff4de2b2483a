"""stdout is for data, stderr is for people: one console for each."""

from __future__ import annotations

import sys
from functools import lru_cache


@lru_cache(maxsize=None)
def err():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


@lru_cache(maxsize=None)
def out():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
