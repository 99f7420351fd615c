"""What every preference store offers: the `Store` protocol, and the small helpers both backends share."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, Protocol

from prefrl.core.data import Answer, Clip, Label, Query

Origin = Literal["asked", "imported"]
"""Who put a query in the store: the run that asks it, or `prefrl import` (which the label budget does not count)."""


class Store(Protocol):
    """Clips, queries and labels of one run: the bus between trainer, teachers, the window and the web page.

    Every write is its own committed transaction (a crash loses nothing given); a query's first answer wins
    (a second labeller's answer is kept as a check); claims keep two labellers off the same pair. Backends:
    `PreferenceStore` (SQLite, one file per run, the embedded default) and `PostgresStore` (one PostgreSQL
    database holding many runs, for trainers and labellers on many machines). `open_store` picks one.
    """

    env_id: str
    """The env whose clips the run stores ("text" for a text policy's)."""
    path: Path
    """Where the store lives, for messages: the SQLite file, or the PostgreSQL run's address."""

    def close(self) -> None: ...

    def meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def add_clip(self, clip: Clip) -> int: ...

    def clip(self, clip_id: int) -> Clip: ...

    def clip_lengths(self) -> set[int]: ...

    def clip_ids(self) -> list[int]: ...

    def add_query(self, left_id: int, right_id: int, env_step: int, origin: Origin = "asked") -> int: ...

    def query(self, query_id: int) -> Query: ...

    def pending_queries(self, limit: int | None = None) -> list[Query]: ...

    def query_of_clips(self) -> dict[int, int]: ...

    def is_open(self, query_id: int) -> bool: ...

    def count_pending(self) -> int: ...

    def count_queries(self, origin: Origin | None = None) -> int: ...

    def claim_next(self, labeler: str, exclude: set[int] | frozenset[int] = frozenset(),
                   lease_s: float = 300.0) -> Query | None: ...

    def release_claims(self, labeler: str) -> None: ...

    def claim_check(self, labeler: str, share: float, exclude: set[int] | frozenset[int] = frozenset(),
                    lease_s: float = 300.0) -> Query | None: ...

    def claim_of(self, query_id: int) -> tuple[str, float] | None: ...

    def add_rating(self, clip_id: int, value: float, labeler: str) -> int: ...

    def ratings(self) -> list[tuple[int, float, str]]: ...

    def undo_last_rating(self, labeler: str) -> int | None: ...

    def add_label(self, query_id: int, answer: Answer, labeler: str, shown: float | None = None) -> int: ...

    def undo_last_label(self, labeler: str) -> Label | None: ...

    def labels(self) -> list[Label]: ...

    def count_labels(self, include_skips: bool = True) -> int: ...

    def labelled_pairs(self) -> list[tuple[Query, Label]]: ...

    def checks(self) -> list[tuple[Label, Label]]: ...

    def answer_times(self) -> dict[str, list[float]]: ...

    def add_labeler(self, name: str) -> str: ...

    def labeler_of(self, token: str) -> str | None: ...

    def labelers(self) -> list[str]: ...


def in_check_share(query_id: int, share: float) -> bool:
    """Whether a query is in the share of queries asked twice (a fixed spread of ids: Knuth's multiplicative
    hash mod 2^32, the same test `claim_check` makes in SQL)."""
    return (query_id * 2654435761) % 2**32 < share * 2**32


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def finite_or_none(x: float) -> float | None:
    return x if x == x and abs(x) != float("inf") else None
