"""Loading a user's code by name: `package.module:function`, as --env factories and --teacher-score take it."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from prefrl.errors import PrefrlError


def load_callable(spec: str, what: str = "env factory") -> Callable[..., Any]:
    """Import `package.module:name` and return that callable, with one clear error if it is not there."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise PrefrlError(f"{what} '{spec}' is not of the form package.module:function")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: modules next to where the command is run
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PrefrlError(f"cannot import module '{module_name}' of {what} '{spec}' ({e}): check the "
                          "spelling and that the module is on PYTHONPATH or installed") from e
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise PrefrlError(f"module '{module_name}' has no callable '{attr}': pass package.module:function "
                          f"naming your {what}")
    return factory  # type: ignore[no-any-return]
