"""The run a server serves, and how its queries are handed to labellers.

Claims live in the store (`claim_next`, `claim_check`, `claim_of`), not in the server: a query shown to one
labeller is held for them for `lease_s`, so a second labeller gets other queries, and the time it was handed
out (the label's `shown`) survives a restart of the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prefrl.core.data import Query
from prefrl.core.store import Store, open_store
from prefrl.gym.render import clip_paths
from prefrl.interfaces.web.models import NextQuery


@dataclass
class Served:
    """One run directory behind the web API.

    Args:
        run_dir: the run directory (prefs.sqlite, clips/).
        double_share: share of queries (a fixed set, chosen by query id) also asked of a second labeller as a
            check of the first answer.
        lease_s: how long a query handed to a labeller stays theirs.
        store_url: the run's store (None: RUN/prefs.sqlite, or the store RUN/config.json records).
    """

    run_dir: Path
    double_share: float = 0.1
    lease_s: float = 120.0
    store_url: str | None = None
    store: Store = field(init=False)
    clips_dir: Path = field(init=False)
    _unshowable: set[int] = field(init=False, default_factory=set)  # answered queries whose clips were never drawn

    def __post_init__(self) -> None:
        self.store = open_store(self.run_dir, self.store_url)
        self.clips_dir = self.run_dir / "clips"  # rendered here, beside the server, from the store's clip states
        self.clips_dir.mkdir(parents=True, exist_ok=True)

    def video(self, clip_id: int) -> Path:
        return clip_paths(self.clips_dir, clip_id)[1]

    def showable(self, q: Query) -> bool:
        """Both of its clips are rendered (the render worker writes each video atomically)."""
        return self.video(q.left_id).exists() and self.video(q.right_id).exists()

    def hand_out(self, labeler: str) -> NextQuery | None:
        """Claim the next query for a labeller: a check when nothing new waits, or when their checks fall below
        the double share of their answers; else the oldest open query nobody else holds whose videos exist."""
        checks, given = self.given(labeler)
        if self.double_share > 0 and checks < self.double_share * given and (q := self._claim_check(labeler)):
            return self._next(q, check=True)
        unready = {q.id for q in self.store.pending_queries() if not self.showable(q)}
        q = self.store.claim_next(labeler, exclude=unready, lease_s=self.lease_s)
        if q is not None:
            return self._next(q)
        q = self._claim_check(labeler) if self.double_share > 0 else None
        return None if q is None else self._next(q, check=True)

    def hand_back(self, labeler: str, query_id: int) -> NextQuery | None:
        """The query of a label just undone, claimed again for its labeller (its clock restarts), if it is open."""
        others = {q.id for q in self.store.pending_queries() if q.id != query_id}
        q = self.store.claim_next(labeler, exclude=others, lease_s=self.lease_s)
        return None if q is None or q.id != query_id or not self.showable(q) else self._next(q)

    def shown(self, labeler: str, query_id: int) -> float | None:
        """When the query was handed to this labeller (None if it was not, or someone else holds it now)."""
        claim = self.store.claim_of(query_id)
        return claim[1] if claim is not None and claim[0] == labeler else None

    def given(self, labeler: str) -> tuple[int, int]:
        """(checks, all answers) this labeller has given and not undone."""
        checks = sum(1 for _, k in self.store.checks() if k.labeler == labeler)
        return checks, checks + sum(1 for lab in self.store.labels() if lab.labeler == labeler)

    def _claim_check(self, labeler: str) -> Query | None:
        while (q := self.store.claim_check(labeler, self.double_share, self._unshowable, self.lease_s)) is not None:
            if self.showable(q):
                return q
            self._unshowable.add(q.id)
        return None

    def _next(self, q: Query, check: bool = False) -> NextQuery:
        return NextQuery(query_id=q.id, left=f"/clips/{q.left_id}.mp4", right=f"/clips/{q.right_id}.mp4", check=check)
