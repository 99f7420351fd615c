"""The embedded preference store: one SQLite database per run (RUN/prefs.sqlite), the default backend of `Store`.

Every clip, query and label is a row the moment it exists; each write is its own committed
transaction, so a crash loses nothing that was given. WAL mode lets a labelling UI in another
process read and write while the trainer does.
"""

from __future__ import annotations

import dataclasses
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefrl.core.data import Answer, Clip, Label, Query
from prefrl.core.store.base import Origin, finite_or_none, in_check_share, sha256
from prefrl.errors import PrefrlError

SCHEMA_VERSION = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY,
    env_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    start INTEGER NOT NULL,
    length INTEGER NOT NULL,
    env_step INTEGER NOT NULL,
    true_return REAL,
    data BLOB NOT NULL,
    created REAL NOT NULL,
    prompt TEXT,
    completion TEXT
);
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY,
    left_clip INTEGER NOT NULL REFERENCES clips(id),
    right_clip INTEGER NOT NULL REFERENCES clips(id),
    env_step INTEGER NOT NULL,
    created REAL NOT NULL,
    claimed_by TEXT,
    claimed_at REAL,
    origin TEXT NOT NULL DEFAULT 'asked'
);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY,
    query_id INTEGER NOT NULL REFERENCES queries(id),
    answer TEXT NOT NULL,
    labeler TEXT NOT NULL,
    created REAL NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0,
    shown REAL,
    role TEXT NOT NULL DEFAULT 'standing'
);
CREATE UNIQUE INDEX IF NOT EXISTS labels_standing ON labels(query_id) WHERE undone = 0 AND role = 'standing';
CREATE TABLE IF NOT EXISTS labelers (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY,
    clip_id INTEGER NOT NULL REFERENCES clips(id),
    value REAL NOT NULL,
    labeler TEXT NOT NULL,
    created REAL NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
);
"""

# A query is open while no standing label answers it (used as `queries q` in the SQL below).
_OPEN = "NOT EXISTS (SELECT 1 FROM labels l WHERE l.query_id = q.id AND l.undone = 0 AND l.role = 'standing')"
# A label that answers its query (not a second labeller's check of it, not undone).
_STANDING = "undone = 0 AND role = 'standing'"

# Each entry upgrades a store from the version before it.
_MIGRATIONS = {
    2: ["ALTER TABLE queries ADD COLUMN claimed_by TEXT", "ALTER TABLE queries ADD COLUMN claimed_at REAL"],
    # who asked a query (the run itself, or `prefrl import`); at most one standing label per query, by index
    3: ["ALTER TABLE queries ADD COLUMN origin TEXT NOT NULL DEFAULT 'asked'", "DROP INDEX IF EXISTS labels_query"],
    # the text of a text policy's clip: its prompt and completion
    4: ["ALTER TABLE clips ADD COLUMN prompt TEXT", "ALTER TABLE clips ADD COLUMN completion TEXT"],
    # when a label's query was shown (time per label); a second labeller's answer kept as a check of the first;
    # labellers of the web page with their tokens (the table itself is created with the schema)
    5: ["ALTER TABLE labels ADD COLUMN shown REAL",
        "ALTER TABLE labels ADD COLUMN role TEXT NOT NULL DEFAULT 'standing'", "DROP INDEX IF EXISTS labels_standing"],
}

BUSY_PATIENCE_S = 600.0
"""How long a write waits, in all, for the database lock before it fails."""


class PreferenceStore:
    """Clips, queries and labels of one run, in one SQLite file.

    Safe to share between threads (one connection per thread) and between processes (WAL, busy wait).

    Example:
        >>> store = PreferenceStore(tmp_path / "prefs.sqlite", env_id="HalfCheetah-v5")
        >>> qid = store.add_query(store.add_clip(clip_a), store.add_clip(clip_b), env_step=0)
        >>> store.add_label(qid, Answer.LEFT, labeler="oracle")
    """

    def __init__(self, path: str | Path, env_id: str | None = None) -> None:
        self.path = Path(path)
        self._local = threading.local()
        if env_id is None and not self.path.exists():
            raise PrefrlError(f"no preference store at {self.path}: pass a run directory made by `prefrl train`")
        c = self._conn()
        has_meta = c.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone() is not None
        row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() if has_meta else None
        stored_env = c.execute("SELECT value FROM meta WHERE key='env_id'").fetchone() if has_meta else None
        version = None if row is None else int(row[0])
        if version is not None and version > SCHEMA_VERSION:
            raise PrefrlError(f"{self.path} has store schema {version}, newer than this prefrl "
                              f"({SCHEMA_VERSION}): upgrade prefrl to read it")
        if stored_env is not None and env_id is not None and stored_env[0] != env_id:
            raise PrefrlError(f"the store {self.path} holds clips of env '{stored_env[0]}', not "
                              f"'{env_id}': use a new run directory, or --env {stored_env[0]}")
        if version != SCHEMA_VERSION or (stored_env is None and env_id is not None):
            self._create_or_migrate(version, env_id if stored_env is None else None)
        # (a store already at this schema is only read here: opening it changes nothing in the file)
        self.env_id: str = env_id if env_id is not None else self.meta("env_id") or ""

    def _create_or_migrate(self, version: int | None, env_id: str | None) -> None:
        """Create the tables of a new store, or upgrade an older schema; record the env if it is not yet."""
        with self._tx() as c:
            for v in range(SCHEMA_VERSION + 1 if version is None else version + 1, SCHEMA_VERSION + 1):
                for stmt in _MIGRATIONS.get(v, []):
                    c.execute(stmt)
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            c.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            if env_id is not None:
                c.execute("INSERT OR IGNORE INTO meta VALUES ('env_id', ?)", (env_id,))

    # -- connection handling -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction; BEGIN IMMEDIATE so concurrent writers queue instead of failing. SQLite's busy
        wait (30 s a try) is not fair: under heavy contention on a loaded machine a writer can lose every round, so
        it tries again for up to BUSY_PATIENCE_S before giving up; an answer is not dropped for a busy moment."""
        conn = self._conn()
        deadline = time.monotonic() + BUSY_PATIENCE_S
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01 + 0.05 * random.random())
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- meta ----------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- clips ---------------------------------------------------------------------------------
    def add_clip(self, clip: Clip) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO clips (env_id, episode, start, length, env_step, true_return, data, created, prompt,"
                " completion) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.env_id, clip.episode, clip.start, clip.length, clip.env_step,
                 finite_or_none(clip.true_return), clip.to_bytes(), time.time(), clip.prompt, clip.completion))
            return int(cur.lastrowid or 0)

    def clip(self, clip_id: int) -> Clip:
        row = self._conn().execute(
            "SELECT data, env_step, episode, start, prompt, completion FROM clips WHERE id=?", (clip_id,)).fetchone()
        if row is None:
            raise KeyError(f"no clip {clip_id} in {self.path}")
        clip = Clip.from_bytes(row[0], id=clip_id, env_step=row[1], episode=row[2], start=row[3])
        if row[4] is None and row[5] is None:
            return clip
        return dataclasses.replace(clip, prompt=row[4], completion=row[5])

    def clip_lengths(self) -> set[int]:
        """The lengths (in steps) of the clips stored so far."""
        return {int(r[0]) for r in self._conn().execute("SELECT DISTINCT length FROM clips")}

    def clip_ids(self) -> list[int]:
        return [r[0] for r in self._conn().execute("SELECT id FROM clips ORDER BY id")]

    # -- queries -------------------------------------------------------------------------------
    def add_query(self, left_id: int, right_id: int, env_step: int, origin: Origin = "asked") -> int:
        with self._tx() as c:
            cur = c.execute("INSERT INTO queries (left_clip, right_clip, env_step, created, origin) VALUES (?,?,?,?,?)",
                            (left_id, right_id, env_step, time.time(), origin))
            return int(cur.lastrowid or 0)

    def query(self, query_id: int) -> Query:
        row = self._conn().execute(
            "SELECT id, left_clip, right_clip, created, env_step FROM queries WHERE id=?", (query_id,)).fetchone()
        if row is None:
            raise KeyError(f"no query {query_id} in {self.path}")
        return Query(*row)

    def pending_queries(self, limit: int | None = None) -> list[Query]:
        """Queries with no standing label, oldest first."""
        rows = self._conn().execute(
            f"SELECT id, left_clip, right_clip, created, env_step FROM queries q WHERE {_OPEN} ORDER BY id LIMIT ?",
            (-1 if limit is None else limit,)).fetchall()
        return [Query(*r) for r in rows]

    def query_of_clips(self) -> dict[int, int]:
        """clip id -> the query it was asked in."""
        rows = self._conn().execute("SELECT id, left_clip, right_clip FROM queries").fetchall()
        return {cid: qid for qid, left, right in rows for cid in (left, right)}

    def is_open(self, query_id: int) -> bool:
        """True while the query has no standing label."""
        row = self._conn().execute(f"SELECT 1 FROM labels WHERE query_id=? AND {_STANDING}", (query_id,)).fetchone()
        return row is None

    def count_pending(self) -> int:
        return int(self._conn().execute(f"SELECT COUNT(*) FROM queries q WHERE {_OPEN}").fetchone()[0])

    def count_queries(self, origin: Origin | None = None) -> int:
        """All queries, or those of one origin (`count_queries("asked")`: the questions the run has asked)."""
        if origin is None:
            return int(self._conn().execute("SELECT COUNT(*) FROM queries").fetchone()[0])
        return int(self._conn().execute("SELECT COUNT(*) FROM queries WHERE origin=?", (origin,)).fetchone()[0])

    def claim_next(self, labeler: str, exclude: set[int] | frozenset[int] = frozenset(),
                   lease_s: float = 300.0) -> Query | None:
        """Reserve the oldest open query nobody else holds (a claim lapses after `lease_s`), so that two
        people labelling at once are never shown the same pair."""
        now = time.time()
        with self._tx() as c:
            rows = c.execute(
                f"SELECT id, left_clip, right_clip, created, env_step FROM queries q WHERE {_OPEN} "
                "AND (claimed_by IS NULL OR claimed_by = ? OR claimed_at < ?) ORDER BY id",
                (labeler, now - lease_s)).fetchall()
            for r in rows:
                if r[0] not in exclude:
                    c.execute("UPDATE queries SET claimed_by=?, claimed_at=? WHERE id=?", (labeler, now, r[0]))
                    return Query(*r)
        return None

    def release_claims(self, labeler: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE queries SET claimed_by=NULL, claimed_at=NULL WHERE claimed_by=?", (labeler,))

    in_check_share = staticmethod(in_check_share)

    def claim_check(self, labeler: str, share: float, exclude: set[int] | frozenset[int] = frozenset(),
                    lease_s: float = 300.0) -> Query | None:
        """Reserve the oldest answered query to be checked by a second labeller: it is in the double `share`
        (`in_check_share`), someone else gave its standing label (not a skip), nobody has checked it yet, and no
        other labeller holds it (the one who answered it no longer counts as holding it). The answer then goes
        to `add_label`, which keeps it as a check; `checks()` pairs it with the standing label."""
        now = time.time()
        with self._tx() as c:
            rows = c.execute(
                "SELECT q.id, q.left_clip, q.right_clip, q.created, q.env_step FROM queries q JOIN labels s "
                "ON s.query_id = q.id AND s.undone = 0 AND s.role = 'standing' "
                "WHERE s.labeler != ? AND s.answer != 'skip' AND (q.id * 2654435761) % 4294967296 < ? "
                "AND NOT EXISTS (SELECT 1 FROM labels k WHERE k.query_id = q.id AND k.undone = 0 AND k.role = 'check') "
                "AND (q.claimed_by IS NULL OR q.claimed_by = ? OR q.claimed_by = s.labeler OR q.claimed_at < ?) "
                "ORDER BY q.id", (labeler, share * 2**32, labeler, now - lease_s)).fetchall()
            for r in rows:
                if r[0] not in exclude:
                    c.execute("UPDATE queries SET claimed_by=?, claimed_at=? WHERE id=?", (labeler, now, r[0]))
                    return Query(*r)
        return None

    def claim_of(self, query_id: int) -> tuple[str, float] | None:
        """(labeller, time it was handed to them) of the query's latest claim (`claim_next` or `claim_check`),
        or None: when a page showed the query, kept in the store so that a restarted server still knows it."""
        row = self._conn().execute("SELECT claimed_by, claimed_at FROM queries WHERE id=?", (query_id,)).fetchone()
        return None if row is None or row[0] is None else (str(row[0]), float(row[1]))

    # -- ratings -------------------------------------------------------------------------------
    def add_rating(self, clip_id: int, value: float, labeler: str) -> int:
        """Commit one rating of a single clip (e.g. 1-5, or 0/1 for bad/good) at once."""
        with self._tx() as c:
            cur = c.execute("INSERT INTO ratings (clip_id, value, labeler, created) VALUES (?,?,?,?)",
                            (clip_id, float(value), labeler, time.time()))
            return int(cur.lastrowid or 0)

    def ratings(self) -> list[tuple[int, float, str]]:
        """(clip id, value, labeler) of every standing rating, oldest first."""
        rows = self._conn().execute(
            "SELECT clip_id, value, labeler FROM ratings WHERE undone=0 ORDER BY id").fetchall()
        return [(int(r[0]), float(r[1]), str(r[2])) for r in rows]

    def undo_last_rating(self, labeler: str) -> int | None:
        """Withdraw the labeler's latest rating; returns its clip id."""
        with self._tx() as c:
            row = c.execute("SELECT id, clip_id FROM ratings WHERE labeler=? AND undone=0 ORDER BY id DESC LIMIT 1",
                            (labeler,)).fetchone()
            if row is None:
                return None
            c.execute("UPDATE ratings SET undone=1 WHERE id=?", (row[0],))
        return int(row[1])

    # -- labels --------------------------------------------------------------------------------
    def add_label(self, query_id: int, answer: Answer, labeler: str, shown: float | None = None) -> int:
        """Commit one answer at once; returns the query's standing label. First answer wins: the unique index on a
        query's standing label turns a second answer into nothing, whoever writes it. A second labeller's answer
        to an answered query is kept as a check of the first (for agreement), never as a label to learn from.
        `shown`: when the labeller was shown the query (time.time()), for the time each label took."""
        now = time.time()
        with self._tx() as c:
            cur = c.execute("INSERT INTO labels (query_id, answer, labeler, created, shown) VALUES (?,?,?,?,?) "
                            "ON CONFLICT DO NOTHING", (query_id, Answer(answer).value, labeler, now, shown))
            if cur.rowcount == 1:
                return int(cur.lastrowid or 0)
            standing, first = c.execute(f"SELECT id, labeler FROM labels WHERE query_id=? AND {_STANDING}",
                                        (query_id,)).fetchone()
            mine = c.execute("SELECT 1 FROM labels WHERE query_id=? AND labeler=? AND undone=0",
                             (query_id, labeler)).fetchone()
            if first != labeler and mine is None:
                c.execute("INSERT INTO labels (query_id, answer, labeler, created, shown, role) "
                          "VALUES (?,?,?,?,?,'check')", (query_id, Answer(answer).value, labeler, now, shown))
            return int(standing)

    def undo_last_label(self, labeler: str) -> Label | None:
        """Withdraw the labeler's latest label (kept in the table, marked undone); its query is pending again
        (unless the label was a check of someone else's)."""
        with self._tx() as c:
            row = c.execute("SELECT id, query_id, answer, labeler, created, shown FROM labels WHERE labeler=? AND "
                            "undone=0 ORDER BY id DESC LIMIT 1", (labeler,)).fetchone()
            if row is None:
                return None
            c.execute("UPDATE labels SET undone=1 WHERE id=?", (row[0],))
        return Label(row[0], row[1], Answer(row[2]), row[3], row[4], row[5])

    def labels(self) -> list[Label]:
        """Every standing label, oldest first."""
        rows = self._conn().execute(f"SELECT id, query_id, answer, labeler, created, shown FROM labels "
                                    f"WHERE {_STANDING} ORDER BY id").fetchall()
        return [Label(r[0], r[1], Answer(r[2]), r[3], r[4], r[5]) for r in rows]

    def count_labels(self, include_skips: bool = True) -> int:
        sql = f"SELECT COUNT(*) FROM labels WHERE {_STANDING}" + ("" if include_skips else " AND answer != 'skip'")
        return int(self._conn().execute(sql).fetchone()[0])

    def labelled_pairs(self) -> list[tuple[Query, Label]]:
        """Every standing label with its query, oldest first."""
        rows = self._conn().execute(
            "SELECT q.id, q.left_clip, q.right_clip, q.created, q.env_step, l.id, l.answer, l.labeler, l.created, "
            "l.shown FROM labels l JOIN queries q ON q.id = l.query_id WHERE l.undone = 0 AND l.role = 'standing' "
            "ORDER BY l.id").fetchall()
        return [(Query(*r[:5]), Label(r[5], r[0], Answer(r[6]), r[7], r[8], r[9])) for r in rows]

    def checks(self) -> list[tuple[Label, Label]]:
        """(standing label, a second labeller's check of it) for every query answered twice."""
        rows = self._conn().execute(
            "SELECT s.id, s.query_id, s.answer, s.labeler, s.created, s.shown, "
            "k.id, k.query_id, k.answer, k.labeler, k.created, k.shown FROM labels k JOIN labels s "
            "ON s.query_id = k.query_id AND s.undone = 0 AND s.role = 'standing' "
            "WHERE k.undone = 0 AND k.role = 'check' ORDER BY k.id").fetchall()
        return [(Label(r[0], r[1], Answer(r[2]), r[3], r[4], r[5]), Label(r[6], r[7], Answer(r[8]), r[9], r[10], r[11]))
                for r in rows]

    def answer_times(self) -> dict[str, list[float]]:
        """Seconds from being shown a query to answering it, per labeller (labels whose showing was recorded)."""
        out: dict[str, list[float]] = {}
        for labeler, seconds in self._conn().execute(
                "SELECT labeler, created - shown FROM labels WHERE undone = 0 AND shown IS NOT NULL ORDER BY id"):
            out.setdefault(str(labeler), []).append(float(seconds))
        return out

    # -- labellers of the web page -------------------------------------------------------------
    def add_labeler(self, name: str) -> str:
        """Register a labeller (or give them a new token); returns the token, which only its hash is stored of."""
        token = secrets.token_urlsafe(24)
        with self._tx() as c:
            c.execute("INSERT INTO labelers (name, token_sha256, created) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE "
                      "SET token_sha256 = excluded.token_sha256", (name, sha256(token), time.time()))
        return token

    def labeler_of(self, token: str) -> str | None:
        """The labeller a token belongs to, or None."""
        row = self._conn().execute("SELECT name FROM labelers WHERE token_sha256=?", (sha256(token),)).fetchone()
        return None if row is None else str(row[0])

    def labelers(self) -> list[str]:
        return [str(r[0]) for r in self._conn().execute("SELECT name FROM labelers ORDER BY created")]

