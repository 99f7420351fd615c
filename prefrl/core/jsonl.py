"""Reading JSON Lines files (result rows, LLM datasets, exported labels, sweep results) with one kind of error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefrl.errors import PrefrlError


def json_lines(path: Path, fix: str, file_fix: str | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of `path`. A line that is not JSON raises one PrefrlError naming
    the file and the line, ending with `fix`; a file that is not text, one ending with `file_fix` (default `fix`).
    What a value must be is the caller's to check, naming `{path}:{n}` the same way."""
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise PrefrlError(f"{path} is not a text file: {file_fix or fix}") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise PrefrlError(f"{path}:{n}: not JSON ({e.msg}, column {e.colno}): {fix}") from None
        yield n, value
