"""The preference store, the bus between trainer, teachers and labellers: an interface with two backends.

- `PreferenceStore`: SQLite, one file per run (RUN/prefs.sqlite), the embedded default.
- `PostgresStore`: one PostgreSQL database holding many runs, for trainers and labellers on many machines.

`open_store(run_dir, url, env_id)` opens a run's store: RUN/prefs.sqlite, or the run of that name in the
database a `postgresql://` URL names.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefrl.core.store.base import Origin, Store, in_check_share
from prefrl.core.store.sqlite import SCHEMA_VERSION, PreferenceStore
from prefrl.errors import PrefrlError

__all__ = ["SCHEMA_VERSION", "Origin", "PreferenceStore", "Store", "in_check_share", "open_store", "store_url"]

SQLITE_NAME = "prefs.sqlite"


def store_url(run_dir: Path, url: str | None = None) -> str | None:
    """The store a run uses: `url` if given, else the `store` its config.json records (None: RUN/prefs.sqlite)."""
    if url:
        return url
    config = Path(run_dir) / "config.json"
    try:
        recorded = json.loads(config.read_text()).get("store") if config.exists() else None
    except (OSError, ValueError, AttributeError):
        recorded = None  # a damaged config is reported by whoever reads the run's config
    return recorded if isinstance(recorded, str) and recorded else None


def open_store(run_dir: Path, url: str | None = None, env_id: str | None = None) -> Store:
    """A run's preference store.

    Args:
        run_dir: the run directory. SQLite: the store is RUN/prefs.sqlite. PostgreSQL: the run's name in the
            database is the directory's name, unless the URL names one with `?run=NAME`.
        url: None (RUN/prefs.sqlite, or the store the run's config.json records), a `postgresql://` URL, or a
            `sqlite:///PATH` URL.
        env_id: the env of a run being created or continued (checked against the store's); None opens an
            existing store and fails if there is none.

    Example:
        >>> store = open_store(Path("runs/cheetah"), "postgresql://prefrl@db.lan/prefrl", "HalfCheetah-v5")
    """
    run_dir = Path(run_dir)
    url = store_url(run_dir, url)
    if url is None:
        if env_id is not None:  # a new store may start a new run directory (`prefrl import` does)
            run_dir.mkdir(parents=True, exist_ok=True)
        return PreferenceStore(run_dir / SQLITE_NAME, env_id=env_id)
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        from prefrl.core.store.postgres import PostgresStore, split_url

        conninfo, run = split_url(url, run_dir.resolve().name)
        return PostgresStore(conninfo, run, env_id=env_id)
    if scheme == "sqlite":
        return PreferenceStore(Path(url.split(":", 1)[1].removeprefix("//")), env_id=env_id)
    raise PrefrlError(f"--store {url}: give a postgresql://user@host/db URL (or leave it out for "
                      f"{run_dir / SQLITE_NAME})")
