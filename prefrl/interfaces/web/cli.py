"""`prefrl serve RUN` and `prefrl labelers add|list RUN [NAME]`: the web page's commands (the `[web]` extra)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from prefrl.errors import PrefrlError


@dataclass(frozen=True)
class ServeArgs:
    """Serve a run's comparisons as a web page, for labellers on other machines (each with a token from
    `prefrl labelers add`). Works while the run trains and after."""

    run_dir: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """Run directory (holding prefs.sqlite)."""
    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0 for every interface; put TLS in front of it beyond a trusted network)."""
    port: int = 8000
    double_share: float = 0.1
    """Share of queries (a fixed set, by query id) also asked of a second labeller, as a check of the first."""
    lease_s: float = 120.0
    """Seconds a query shown to a labeller stays theirs before another labeller may get it."""
    ahead: int = 8
    """Open queries the render worker keeps drawn ahead of the labellers."""
    store: str | None = None
    """The run's store: a postgresql://user@host/db URL (the run named by RUN_DIR's name, or ?run=NAME); clip
    videos are drawn beside this server into RUN_DIR/clips. Default: RUN_DIR/prefs.sqlite (or the run's --store)."""


@dataclass(frozen=True)
class LabelersArgs:
    """Add a labeller of the web page (prints their token; only its hash is stored), or list them."""

    action: Annotated[Literal["add", "list"], tyro.conf.Positional]
    run_dir: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """Run directory (holding prefs.sqlite)."""
    name: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="NAME")] = ""
    """The labeller's name, stored with their labels (add: a new token replaces an old one)."""
    store: str | None = None
    """The run's store: a postgresql://user@host/db URL. Default: RUN_DIR/prefs.sqlite (or the run's --store)."""


def _store(run_dir: Path, url: str | None) -> Any:
    from prefrl.core.store import open_store

    return open_store(run_dir, url)


def serve(args: ServeArgs) -> int:
    if not 0.0 <= args.double_share <= 1.0:
        raise PrefrlError(f"--double-share {args.double_share} is not a share: give a number from 0 to 1")
    if args.lease_s <= 0:
        raise PrefrlError(f"--lease-s {args.lease_s} must be positive")
    try:
        import uvicorn

        from prefrl.interfaces.web.app import create_app
    except ImportError as e:
        raise PrefrlError(f"the web page needs its extra ({e}): pip install 'prefrl[web]'") from None
    store = _store(args.run_dir, args.store)
    if not store.labelers():
        print(f"no labellers yet: add one with `prefrl labelers add {args.run_dir} NAME`")
    app = create_app(args.run_dir, double_share=args.double_share, lease_s=args.lease_s, render_ahead=args.ahead,
                     store_url=args.store)
    print(f"serving {args.run_dir} on http://{args.host}:{args.port}/  (give each labeller the link with ?token=...)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def labelers(args: LabelersArgs) -> int:
    store = _store(args.run_dir, args.store)
    if args.action == "list":
        print("\n".join(store.labelers()) or "no labellers yet")
        return 0
    if not args.name:
        raise PrefrlError(f"give the labeller's name: prefrl labelers add {args.run_dir} NAME")
    token = store.add_labeler(args.name)
    print(f"{args.name}: {token}\nlink: http://HOST:PORT/?token={token}")
    return 0


COMMANDS: dict[str, tuple[type, Callable[[Any], int]]] = {
    "serve": (ServeArgs, serve),
    "labelers": (LabelersArgs, labelers),
}
"""The web page's subcommands: the dataclass its flags come from, and what runs it."""
