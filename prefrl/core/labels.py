"""The label machinery of the loop, in one object: what is due now, ask, answer, refit.

`Preferences` knows nothing of Gymnasium. Candidate clips come from a `ClipSource` (the reward wrapper's clip
recorder for an agent in an env; sampled completions for a text policy); the questions go to the store, where
a scripted teacher (here) or a person (in the window or the web page) answers them; the reward model is refitted
on every label in the store. The count of questions asked is the store's: queries the run asked, not those
brought in by `prefrl import`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from prefrl.core.data import Clip
from prefrl.core.reward.background import BackgroundFitter
from prefrl.core.reward.model import RewardModel
from prefrl.core.reward.trainer import RewardStats, RewardTrainer
from prefrl.core.schedule import LabelSchedule
from prefrl.core.selection import PairSelector
from prefrl.core.store import Store
from prefrl.core.teachers import Teacher, answer_pending
from prefrl.core.timing import Timers

FINAL = -1
"""The `step` of the last label round: whatever is left of the budget is due."""
PersonChoice = Literal["gone", "stop"]
PERSON_KEY = "person"
"""Store meta key where the window records the person's choice on leaving: "gone" or "stop"."""
WAITING_KEY = "waiting"
"""Store meta key where the run says it waits for the person: JSON {"answered", "need"}, or empty."""


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

    store: Store
    schedule: LabelSchedule
    selector: PairSelector
    trainer: RewardTrainer
    source: ClipSource
    teacher: Teacher | None
    rng: np.random.Generator
    max_open: int | None = None
    reference_fraction: float = 0.0
    background: BackgroundFitter | None = None
    """Where set, fits run on its thread beside the agent (see `refit`)."""
    timers: Timers = field(default_factory=Timers)
    """Seconds spent asking and answering ("store"), fitting ("reward_fit") and waiting for a person ("waiting")."""

    @property
    def model(self) -> RewardModel:
        return self.trainer.model

    @property
    def asked(self) -> int:
        """Questions this run has asked so far (imported ones are not counted)."""
        return self.store.count_queries("asked")

    def due(self, step: int) -> int:
        """Questions the schedule wants asked by agent step `step` that have not been asked yet (all that are left of
        the budget once `step` is `FINAL`)."""
        wanted = self.schedule.total if step == FINAL else self.schedule.due(step)
        return max(0, wanted - self.asked)

    def ask(self, n: int, env_step: int) -> int:
        """Put up to `n` new pairs of recent clips to the teacher; returns how many were asked."""
        with self.timers("store"):
            return self._ask(n, env_step)

    def _ask(self, n: int, env_step: int) -> int:
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
        if self.teacher is None:
            return 0
        with self.timers("store"):
            return answer_pending(self.store, self.teacher)

    def refit(self, wait: bool = True) -> RewardStats | None:
        """Fit the reward model on every label so far, then renormalise its output over recent behaviour. With a
        background fitter the fit starts on its thread, and `wait` says whether to block until it is done (else the
        agent gets the weights between two rollouts); returns the last completed fit's stats."""
        with self.timers("reward_fit"):
            if self.background is not None:
                self.background.submit(self.store, self.source.clips)
                return self.background.wait() if wait else self.background.stats
            stats = self.trainer.fit(self.store)
            if stats is not None:
                self.model.normalise_outputs(self.source.clips)
        return stats

    def round(self, step: int, env_step: int, wait: bool = True) -> RewardStats | None:
        """One label round: ask what is due at agent step `step` (`FINAL`: the rest of the budget), answer, refit
        (`wait`: see `refit`)."""
        self.ask(self.due(step), env_step)
        self.answer()
        return self.refit(wait)

    def labels(self) -> int:
        """Labels that carry information (skips are not counted)."""
        return self.store.count_labels(include_skips=False)

    # -- a person answering --------------------------------------------------------------------
    def person_choice(self) -> PersonChoice | None:
        """What the person chose on leaving the window: "gone" (go on without me) or "stop" (stop the run)."""
        value = self.store.meta(PERSON_KEY)
        return value if value in ("gone", "stop") else None  # type: ignore[return-value]

    def person_left(self) -> bool:
        return self.teacher is None and self.person_choice() is not None

    def reset_person(self) -> None:
        self.store.set_meta(PERSON_KEY, "")
        self.store.set_meta(WAITING_KEY, "")

    def wait_for_person(self, step: int, env_step: int, behind: int,
                        on_wait: Callable[[int, int], None] | None = None, poll_s: float = 0.25,
                        check: Callable[[], None] | None = None) -> bool:
        """Block until at most `behind` questions are due at agent step `step` or open, asking more as the open
        queue drains; returns whether it waited. While waiting, the store's meta 'waiting' holds
        {"answered", "need"} for the window, and `on_wait(answered, need)` is told of each change. Returns at once
        when the person leaves (see `person_choice`). `check()` is called at each poll: it raises when whoever
        answers can no longer (a paced teacher's thread that died), so the run fails instead of waiting for ever."""
        waited, last = False, None
        while not self.person_left():
            asked = self.ask(self.due(step), env_step)
            open_ = self.store.count_pending()
            outstanding = self.due(step) + open_
            if outstanding <= behind or (open_ == 0 and asked == 0):  # (no clip left to ask about: nothing to wait for)
                break
            answered = self.asked - open_
            need = answered + outstanding - behind
            if (answered, need) != last:
                self.store.set_meta(WAITING_KEY, json.dumps({"answered": answered, "need": need}))
                if on_wait is not None:
                    on_wait(answered, need)
                last = (answered, need)
            waited = True
            if check is not None:
                check()
            with self.timers("waiting"):
                time.sleep(poll_s)
        if waited:
            self.store.set_meta(WAITING_KEY, "")
        return waited
