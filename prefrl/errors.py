"""The one error type a user can cause: its message always names the fix."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


class PrefrlError(Exception):
    """Bad input or a bad run directory. The CLI prints the message alone, with no stack trace."""


def exit_status(run: Callable[[], int | None]) -> int:
    """A script's exit status: `run()`'s (0 for None); a PrefrlError it raises is printed as `SCRIPT: error: MESSAGE`
    alone, with no stack trace, and gives 2, as the prefrl command does."""
    try:
        return run() or 0
    except PrefrlError as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        return 2
