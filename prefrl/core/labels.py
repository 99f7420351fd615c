"""The label machinery of the loop, in one object: what is due now, ask, answer, refit.

`Preferences` knows nothing of Gymnasium. Candidate clips come from a `ClipSource` (the reward wrapper's clip
recorder for an agent in an env; sampled completions for a text policy); the questions go to the store, where
a scripted teacher (here) or a person (in the window or the web page) answers them; the reward model is refitted
on every label in the store. The count of questions asked is the store's: queries the run asked, not those
brought in by `prefrl import`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from prefrl.core.data import Clip
from prefrl.core.reward.model import RewardModel
from prefrl.core.reward.trainer import RewardStats, RewardTrainer
from prefrl.core.schedule import LabelSchedule
from prefrl.core.selection import PairSelector
from prefrl.core.store import PreferenceStore
from prefrl.core.teachers import Teacher, answer_pending


class ClipSource(Protocol):
    """Recent behaviour to ask about: clips in a sequence, and a way to drop the ones asked about."""

    @property
    def clips(self) -> Sequence[Clip]: ...

    def forget(self, indices: set[int]) -> None:
        """Drop the clips at these positions (they are in the store now)."""
        ...


@dataclass
class Preferences:
    """Asks for labels as `schedule` says, lets `teacher` answer them (None: a person answers through the store),
    and refits the reward model.

    Attributes:
        max_open: with a person answering, at most this many queries wait unanswered (None: no cap).
        reference_fraction: share of each round's queries that pair a new clip with a stored one.
    """

    store: PreferenceStore
    schedule: LabelSchedule
    selector: PairSelector
    trainer: RewardTrainer
    source: ClipSource
    teacher: Teacher | None
    rng: np.random.Generator
    max_open: int | None = None
    reference_fraction: float = 0.0

    @property
    def model(self) -> RewardModel:
        return self.trainer.model

    @property
    def asked(self) -> int:
        """Questions this run has asked so far (imported ones are not counted)."""
        return self.store.count_queries("asked")

    def due(self, step: int) -> int:
        """Questions the schedule wants asked by agent step `step` that have not been asked yet."""
        return max(0, self.schedule.due(step) - self.asked)

    def ask(self, n: int, env_step: int) -> int:
        """Put up to `n` new pairs of recent clips to the teacher; returns how many were asked."""
        if self.max_open is not None:  # a person answers at their own pace: keep only a few recent queries waiting
            n = min(n, self.max_open - self.store.count_pending())
        clips = list(self.source.clips)
        if n <= 0 or len(clips) < 2:
            return 0
        known = self.store.clip_ids() if self.reference_fraction > 0 else []
        n_ref = round(n * self.reference_fraction) if known else 0
        pairs = self.selector.select(clips, n - n_ref, self.rng)
        for a, b in pairs:
            self.store.add_query(self.store.add_clip(clips[a]), self.store.add_clip(clips[b]), env_step=env_step)
        used = {i for p in pairs for i in p}
        refs = self.selector.select_references(clips, known, n_ref, used, self.rng, self.store.clip)
        for i, ref in refs:
            new = self.store.add_clip(clips[i])
            left, right = (new, ref) if self.rng.random() < 0.5 else (ref, new)
            self.store.add_query(left, right, env_step=env_step)
            used.add(i)
        self.source.forget(used)
        return len(pairs) + len(refs)

    def answer(self) -> int:
        """A scripted teacher answers every open query at once; a person's answers arrive through the store."""
        return 0 if self.teacher is None else answer_pending(self.store, self.teacher)

    def refit(self) -> RewardStats | None:
        """Fit the reward model on every label so far, then renormalise its output over recent behaviour."""
        stats = self.trainer.fit(self.store)
        if stats is not None:
            self.model.normalise_outputs(self.source.clips)
        return stats

    def round(self, step: int, env_step: int) -> RewardStats | None:
        """One label round: ask what is due at agent step `step`, answer, refit."""
        self.ask(self.due(step), env_step)
        self.answer()
        return self.refit()

    def labels(self) -> int:
        """Labels that carry information (skips are not counted)."""
        return self.store.count_labels(include_skips=False)
