"""The server preference store: many runs in one PostgreSQL database, for trainers and labellers on many machines.

Each run is a row of `runs`, keyed by its name; every other table carries the run's id. The same guarantees as
the SQLite store: each write is its own committed transaction; a query's first answer wins by a unique partial
index on its standing label plus `ON CONFLICT DO NOTHING`; the next query is claimed by one
`UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)`, so labellers racing for queries neither wait
for each other nor get the same one. Needs psycopg 3 (`pip install 'prefrl[postgres]'`).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from prefrl.core.data import Answer, Clip, Label, Query
from prefrl.core.store.base import Origin, finite_or_none, in_check_share, sha256
from prefrl.errors import PrefrlError

SCHEMA_VERSION = 1
"""Version of the PostgreSQL layout (one per database, in `prefrl_schema`; independent of the SQLite one's)."""

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS prefrl_schema (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs (id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, created DOUBLE PRECISION"
    " NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (run INTEGER NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT"
    " NULL, PRIMARY KEY (run, key))",
    """CREATE TABLE IF NOT EXISTS clips (
        id BIGSERIAL PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id), env_id TEXT NOT NULL,
        episode INTEGER NOT NULL, start INTEGER NOT NULL, length INTEGER NOT NULL, env_step BIGINT NOT NULL,
        true_return DOUBLE PRECISION, data BYTEA NOT NULL, created DOUBLE PRECISION NOT NULL, prompt TEXT,
        completion TEXT)""",
    "CREATE INDEX IF NOT EXISTS clips_run ON clips(run, id)",
    """CREATE TABLE IF NOT EXISTS queries (
        id BIGSERIAL PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id),
        left_clip BIGINT NOT NULL REFERENCES clips(id), right_clip BIGINT NOT NULL REFERENCES clips(id),
        env_step BIGINT NOT NULL, created DOUBLE PRECISION NOT NULL, claimed_by TEXT, claimed_at DOUBLE PRECISION,
        origin TEXT NOT NULL DEFAULT 'asked')""",
    "CREATE INDEX IF NOT EXISTS queries_run ON queries(run, id)",
    """CREATE TABLE IF NOT EXISTS labels (
        id BIGSERIAL PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id),
        query_id BIGINT NOT NULL REFERENCES queries(id), answer TEXT NOT NULL, labeler TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL, undone BOOLEAN NOT NULL DEFAULT FALSE, shown DOUBLE PRECISION,
        role TEXT NOT NULL DEFAULT 'standing')""",
    "CREATE INDEX IF NOT EXISTS labels_run ON labels(run, id)",
    "CREATE INDEX IF NOT EXISTS labels_query ON labels(query_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS labels_standing ON labels(query_id) WHERE NOT undone AND role = 'standing'",
    """CREATE TABLE IF NOT EXISTS labelers (
        run INTEGER NOT NULL REFERENCES runs(id), name TEXT NOT NULL, token_sha256 TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL, PRIMARY KEY (run, name), UNIQUE (run, token_sha256))""",
    """CREATE TABLE IF NOT EXISTS ratings (
        id BIGSERIAL PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id), clip_id BIGINT NOT NULL REFERENCES
        clips(id), value DOUBLE PRECISION NOT NULL, labeler TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
        undone BOOLEAN NOT NULL DEFAULT FALSE)""",
]

_MIGRATIONS: dict[int, list[str]] = {}
"""Each entry upgrades a database from the version before it (run before `_SCHEMA`, whose statements only create
what is missing). None yet: version 1 is the first layout."""

_LOCK = 0x70726566  # pg_advisory_xact_lock key: one process creates or migrates the schema at a time
_Q = "q.id, q.left_clip, q.right_clip, q.created, q.env_step"
_OPEN = "NOT EXISTS (SELECT 1 FROM labels l WHERE l.query_id = q.id AND NOT l.undone AND l.role = 'standing')"
_STANDING = "NOT undone AND role = 'standing'"
_L = "id, query_id, answer, labeler, created, shown"


def split_url(url: str, default_run: str) -> tuple[str, str]:
    """(libpq connection URL, run name) of a store URL: `postgresql://user@host/db?run=NAME` (run defaults to
    `default_run`, the run directory's name)."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    run = next((v for k, v in params if k == "run"), "") or default_run
    if not run:
        raise PrefrlError(f"the store {url} names no run: add ?run=NAME")
    conninfo = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in params if k != "run"])))
    return conninfo, run


def _label(r: Any) -> Label:
    return Label(int(r[0]), int(r[1]), Answer(r[2]), str(r[3]), float(r[4]), r[5])


class PostgresStore:
    """Clips, queries and labels of one run, in a PostgreSQL database shared with other runs.

    Safe to share between threads (one connection per thread) and between processes (each opens its own).

    Args:
        url: `postgresql://user@host/db` (any libpq URL; a password belongs in ~/.pgpass or PGPASSWORD, not here).
        run: the run's name in the database.
        env_id: the env of a run being created or continued (checked against the run's); None opens an existing run.
    """

    def __init__(self, url: str, run: str, env_id: str | None = None) -> None:
        try:
            import psycopg
        except ImportError as e:
            raise PrefrlError(f"a PostgreSQL store needs psycopg ({e}): pip install 'prefrl[postgres]'") from None
        self._psycopg = psycopg
        self.url, self.run_name = url, run
        shown = urlsplit(url)
        self.path = Path(f"{shown.hostname or 'localhost'}/{shown.path.lstrip('/')}?run={run}")
        self._local = threading.local()
        self._migrate()
        c = self._conn()
        row = c.execute("SELECT id FROM runs WHERE name = %s", (run,)).fetchone()
        if row is None:
            if env_id is None:
                raise PrefrlError(f"no run '{run}' in the store {self._where()}: start it with `prefrl train "
                                  f"--store {self._safe_url()}`, or name another with ?run=NAME")
            c.execute("INSERT INTO runs (name, created) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                      (run, time.time()))
            row = c.execute("SELECT id FROM runs WHERE name = %s", (run,)).fetchone()
        self.run_id = int(row[0])
        stored_env = self.meta("env_id")
        if stored_env is not None and env_id is not None and stored_env != env_id:
            raise PrefrlError(f"the run '{run}' in the store {self._where()} holds clips of env '{stored_env}', not "
                              f"'{env_id}': name another run with ?run=NAME, or --env {stored_env}")
        if stored_env is None and env_id is not None:
            c.execute("INSERT INTO meta VALUES (%s, 'env_id', %s) ON CONFLICT DO NOTHING", (self.run_id, env_id))
        self.env_id: str = env_id if env_id is not None else stored_env or ""

    in_check_share = staticmethod(in_check_share)

    def _safe_url(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))

    def _where(self) -> str:
        return f"{self._safe_url()} (run '{self.run_name}')"

    def _migrate(self) -> None:
        """Create the tables of a new database or upgrade an older layout, one process at a time."""
        c = self._conn()
        with c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            exists = c.execute("SELECT to_regclass('prefrl_schema')").fetchone()[0] is not None
            row = c.execute("SELECT max(version) FROM prefrl_schema").fetchone() if exists else None
            version = None if row is None or row[0] is None else int(row[0])
            if version is not None and version > SCHEMA_VERSION:
                raise PrefrlError(f"the store {self._safe_url()} has schema {version}, newer than this prefrl "
                                  f"({SCHEMA_VERSION}): upgrade prefrl to use it")
            if version == SCHEMA_VERSION:
                return
            for v in range(SCHEMA_VERSION + 1 if version is None else version + 1, SCHEMA_VERSION + 1):
                for stmt in _MIGRATIONS.get(v, []):
                    c.execute(stmt)
            for stmt in _SCHEMA:
                c.execute(stmt)
            c.execute("DELETE FROM prefrl_schema")
            c.execute("INSERT INTO prefrl_schema VALUES (%s)", (SCHEMA_VERSION,))

    # -- connection handling -------------------------------------------------------------------
    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or getattr(self._local, "pid", None) != os.getpid():
            try:
                conn = self._psycopg.connect(self.url, autocommit=True, connect_timeout=10,
                                             application_name="prefrl")
            except self._psycopg.OperationalError as e:
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise PrefrlError(f"cannot open the PostgreSQL store {self._safe_url()} ({msg}): start the server, "
                                  "or fix --store") from None
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn().execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(self._conn().execute(sql, params).fetchall())

    # -- meta ----------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE run = %s AND key = %s", (self.run_id, key))
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._conn().execute("INSERT INTO meta VALUES (%s, %s, %s) ON CONFLICT (run, key) DO UPDATE SET value = "
                             "excluded.value", (self.run_id, key, value))

    # -- clips ---------------------------------------------------------------------------------
    def add_clip(self, clip: Clip) -> int:
        row = self._one(
            "INSERT INTO clips (run, env_id, episode, start, length, env_step, true_return, data, created, prompt,"
            " completion) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (self.run_id, self.env_id, clip.episode, clip.start, clip.length, clip.env_step,
             finite_or_none(clip.true_return), clip.to_bytes(), time.time(), clip.prompt, clip.completion))
        return int(row[0])

    def clip(self, clip_id: int) -> Clip:
        row = self._one("SELECT data, env_step, episode, start, prompt, completion FROM clips WHERE id = %s AND "
                        "run = %s", (clip_id, self.run_id))
        if row is None:
            raise KeyError(f"no clip {clip_id} in {self._where()}")
        clip = Clip.from_bytes(bytes(row[0]), id=clip_id, env_step=row[1], episode=row[2], start=row[3])
        if row[4] is None and row[5] is None:
            return clip
        return dataclasses.replace(clip, prompt=row[4], completion=row[5])

    def clip_lengths(self) -> set[int]:
        return {int(r[0]) for r in self._all("SELECT DISTINCT length FROM clips WHERE run = %s", (self.run_id,))}

    def clip_ids(self) -> list[int]:
        return [int(r[0]) for r in self._all("SELECT id FROM clips WHERE run = %s ORDER BY id", (self.run_id,))]

    # -- queries -------------------------------------------------------------------------------
    def add_query(self, left_id: int, right_id: int, env_step: int, origin: Origin = "asked") -> int:
        row = self._one("INSERT INTO queries (run, left_clip, right_clip, env_step, created, origin) VALUES "
                        "(%s, %s, %s, %s, %s, %s) RETURNING id",
                        (self.run_id, left_id, right_id, env_step, time.time(), origin))
        return int(row[0])

    def query(self, query_id: int) -> Query:
        row = self._one(f"SELECT {_Q} FROM queries q WHERE q.id = %s AND q.run = %s", (query_id, self.run_id))
        if row is None:
            raise KeyError(f"no query {query_id} in {self._where()}")
        return Query(*row)

    def pending_queries(self, limit: int | None = None) -> list[Query]:
        rows = self._all(f"SELECT {_Q} FROM queries q WHERE q.run = %s AND {_OPEN} ORDER BY q.id LIMIT %s",
                         (self.run_id, limit))
        return [Query(*r) for r in rows]

    def query_of_clips(self) -> dict[int, int]:
        rows = self._all("SELECT id, left_clip, right_clip FROM queries WHERE run = %s", (self.run_id,))
        return {int(cid): int(qid) for qid, left, right in rows for cid in (left, right)}

    def is_open(self, query_id: int) -> bool:
        return self._one(f"SELECT 1 FROM labels WHERE query_id = %s AND {_STANDING}", (query_id,)) is None

    def count_pending(self) -> int:
        return int(self._one(f"SELECT COUNT(*) FROM queries q WHERE q.run = %s AND {_OPEN}", (self.run_id,))[0])

    def count_queries(self, origin: Origin | None = None) -> int:
        if origin is None:
            return int(self._one("SELECT COUNT(*) FROM queries WHERE run = %s", (self.run_id,))[0])
        return int(self._one("SELECT COUNT(*) FROM queries WHERE run = %s AND origin = %s", (self.run_id, origin))[0])

    def claim_next(self, labeler: str, exclude: set[int] | frozenset[int] = frozenset(),
                   lease_s: float = 300.0) -> Query | None:
        """Reserve the oldest open query nobody else holds (a claim lapses after `lease_s`): one statement that
        locks the row it picks and skips rows another labeller is claiming at that moment."""
        now = time.time()
        row = self._one(
            f"UPDATE queries SET claimed_by = %s, claimed_at = %s WHERE id = (SELECT q.id FROM queries q "
            f"WHERE q.run = %s AND {_OPEN} AND (q.claimed_by IS NULL OR q.claimed_by = %s OR q.claimed_at < %s) "
            f"AND q.id <> ALL(%s) ORDER BY q.id LIMIT 1 FOR UPDATE SKIP LOCKED) "
            f"RETURNING id, left_clip, right_clip, created, env_step",
            (labeler, now, self.run_id, labeler, now - lease_s, sorted(exclude)))
        return None if row is None else Query(*row)

    def release_claims(self, labeler: str) -> None:
        self._conn().execute("UPDATE queries SET claimed_by = NULL, claimed_at = NULL WHERE run = %s AND "
                             "claimed_by = %s", (self.run_id, labeler))

    def claim_check(self, labeler: str, share: float, exclude: set[int] | frozenset[int] = frozenset(),
                    lease_s: float = 300.0) -> Query | None:
        """As `PreferenceStore.claim_check`: the oldest answered query in the double `share` that someone else
        answered (not with a skip), nobody has checked, and no other labeller holds."""
        now = time.time()
        row = self._one(
            "UPDATE queries SET claimed_by = %s, claimed_at = %s WHERE id = (SELECT q.id FROM queries q JOIN labels s "
            "ON s.query_id = q.id AND NOT s.undone AND s.role = 'standing' "
            "WHERE q.run = %s AND s.labeler <> %s AND s.answer <> 'skip' AND (q.id * 2654435761) %% 4294967296 < %s "
            "AND NOT EXISTS (SELECT 1 FROM labels k WHERE k.query_id = q.id AND NOT k.undone AND k.role = 'check') "
            "AND (q.claimed_by IS NULL OR q.claimed_by = %s OR q.claimed_by = s.labeler OR q.claimed_at < %s) "
            "AND q.id <> ALL(%s) ORDER BY q.id LIMIT 1 FOR UPDATE OF q SKIP LOCKED) "
            "RETURNING id, left_clip, right_clip, created, env_step",
            (labeler, now, self.run_id, labeler, share * 2**32, labeler, now - lease_s, sorted(exclude)))
        return None if row is None else Query(*row)

    def claim_of(self, query_id: int) -> tuple[str, float] | None:
        row = self._one("SELECT claimed_by, claimed_at FROM queries WHERE id = %s", (query_id,))
        return None if row is None or row[0] is None else (str(row[0]), float(row[1]))

    # -- ratings -------------------------------------------------------------------------------
    def add_rating(self, clip_id: int, value: float, labeler: str) -> int:
        row = self._one("INSERT INTO ratings (run, clip_id, value, labeler, created) VALUES (%s, %s, %s, %s, %s) "
                        "RETURNING id", (self.run_id, clip_id, float(value), labeler, time.time()))
        return int(row[0])

    def ratings(self) -> list[tuple[int, float, str]]:
        rows = self._all("SELECT clip_id, value, labeler FROM ratings WHERE run = %s AND NOT undone ORDER BY id",
                         (self.run_id,))
        return [(int(r[0]), float(r[1]), str(r[2])) for r in rows]

    def undo_last_rating(self, labeler: str) -> int | None:
        row = self._one("UPDATE ratings SET undone = TRUE WHERE id = (SELECT id FROM ratings WHERE run = %s AND "
                        "labeler = %s AND NOT undone ORDER BY id DESC LIMIT 1 FOR UPDATE) RETURNING clip_id",
                        (self.run_id, labeler))
        return None if row is None else int(row[0])

    # -- labels --------------------------------------------------------------------------------
    def add_label(self, query_id: int, answer: Answer, labeler: str, shown: float | None = None) -> int:
        """Commit one answer; returns the query's standing label. First answer wins: the unique partial index on a
        query's standing label turns a second answer into nothing (a racing writer waits for the first to commit,
        then does nothing). A second labeller's answer to an answered query is kept as a check of the first."""
        now, value = time.time(), Answer(answer).value
        c = self._conn()
        with c.transaction():
            row = c.execute("INSERT INTO labels (run, query_id, answer, labeler, created, shown) VALUES "
                            "(%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                            (self.run_id, query_id, value, labeler, now, shown)).fetchone()
            if row is not None:
                return int(row[0])
            standing, first = c.execute(f"SELECT id, labeler FROM labels WHERE query_id = %s AND {_STANDING}",
                                        (query_id,)).fetchone()
            mine = c.execute("SELECT 1 FROM labels WHERE query_id = %s AND labeler = %s AND NOT undone",
                             (query_id, labeler)).fetchone()
            if first != labeler and mine is None:
                c.execute("INSERT INTO labels (run, query_id, answer, labeler, created, shown, role) VALUES "
                          "(%s, %s, %s, %s, %s, %s, 'check')", (self.run_id, query_id, value, labeler, now, shown))
            return int(standing)

    def undo_last_label(self, labeler: str) -> Label | None:
        row = self._one(f"UPDATE labels SET undone = TRUE WHERE id = (SELECT id FROM labels WHERE run = %s AND "
                        f"labeler = %s AND NOT undone ORDER BY id DESC LIMIT 1 FOR UPDATE) RETURNING {_L}",
                        (self.run_id, labeler))
        return None if row is None else _label(row)

    def labels(self) -> list[Label]:
        rows = self._all(f"SELECT {_L} FROM labels WHERE run = %s AND {_STANDING} ORDER BY id", (self.run_id,))
        return [_label(r) for r in rows]

    def count_labels(self, include_skips: bool = True) -> int:
        sql = f"SELECT COUNT(*) FROM labels WHERE run = %s AND {_STANDING}" + (
            "" if include_skips else " AND answer <> 'skip'")
        return int(self._one(sql, (self.run_id,))[0])

    def labelled_pairs(self) -> list[tuple[Query, Label]]:
        rows = self._all(
            f"SELECT {_Q}, l.id, l.answer, l.labeler, l.created, l.shown FROM labels l JOIN queries q ON "
            "q.id = l.query_id WHERE l.run = %s AND NOT l.undone AND l.role = 'standing' ORDER BY l.id",
            (self.run_id,))
        return [(Query(*r[:5]), _label((r[5], r[0], r[6], r[7], r[8], r[9]))) for r in rows]

    def checks(self) -> list[tuple[Label, Label]]:
        rows = self._all(
            "SELECT s.id, s.query_id, s.answer, s.labeler, s.created, s.shown, "
            "k.id, k.query_id, k.answer, k.labeler, k.created, k.shown FROM labels k JOIN labels s "
            "ON s.query_id = k.query_id AND NOT s.undone AND s.role = 'standing' "
            "WHERE k.run = %s AND NOT k.undone AND k.role = 'check' ORDER BY k.id", (self.run_id,))
        return [(_label(r[:6]), _label(r[6:])) for r in rows]

    def answer_times(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for labeler, seconds in self._all("SELECT labeler, created - shown FROM labels WHERE run = %s AND NOT undone "
                                          "AND shown IS NOT NULL ORDER BY id", (self.run_id,)):
            out.setdefault(str(labeler), []).append(float(seconds))
        return out

    # -- labellers of the web page -------------------------------------------------------------
    def add_labeler(self, name: str) -> str:
        token = secrets.token_urlsafe(24)
        self._conn().execute("INSERT INTO labelers (run, name, token_sha256, created) VALUES (%s, %s, %s, %s) "
                             "ON CONFLICT (run, name) DO UPDATE SET token_sha256 = excluded.token_sha256",
                             (self.run_id, name, sha256(token), time.time()))
        return token

    def labeler_of(self, token: str) -> str | None:
        row = self._one("SELECT name FROM labelers WHERE run = %s AND token_sha256 = %s", (self.run_id, sha256(token)))
        return None if row is None else str(row[0])

    def labelers(self) -> list[str]:
        return [str(r[0]) for r in self._all("SELECT name FROM labelers WHERE run = %s ORDER BY created",
                                             (self.run_id,))]
