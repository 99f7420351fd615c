"""Teachers: whoever answers queries. Synthetic ones judge by return; a person answers in the UI.

All teachers answer through the store (`answer_pending`), the same way the human UI does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from prefrl.config import TeacherConfig, TeacherKind
from prefrl.core.data import Answer, Clip
from prefrl.core.store import Store
from prefrl.errors import PrefrlError


class Teacher(Protocol):
    name: str

    def answer(self, left: Clip, right: Clip) -> Answer: ...


class ScriptedTeacher:
    """A synthetic teacher after B-Pref (Lee et al. 2021), judging clips by their true return.

    The kinds differ only in parameters: oracle (exact, "equal" on ties), stochastic (Boltzmann-rational
    with `beta`), mistake (flips with `epsilon`), skip (no answer when both returns are below
    `skip_threshold`), equal ("equal" within `equal_threshold`), myopic (step t weighted gamma^(T-1-t)).
    """

    def __init__(self, kind: TeacherKind, params: TeacherConfig, rng: np.random.Generator) -> None:
        self.name: str = kind
        self.kind = kind
        self.p = params
        self.rng = rng

    def clip_return(self, clip: Clip) -> float:
        """The clip's recorded true reward summed: the env's reward, or the scripted score, which the reward
        wrapper records in its place (0 on absorbing steps after a termination, like the env's reward)."""
        r = np.asarray(clip.true_rewards, dtype=np.float64)
        if np.isnan(r).any():
            raise ValueError("a scripted teacher needs the env's reward or a --teacher-score; this clip has none")
        if self.kind == "myopic":
            r = r * self.p.gamma ** np.arange(len(r) - 1, -1, -1)
        return float(r.sum())

    def answer(self, left: Clip, right: Clip) -> Answer:
        rl, rr = self.clip_return(left), self.clip_return(right)
        if self.kind == "skip" and max(rl, rr) < self.p.skip_threshold:
            return Answer.SKIP
        threshold = self.p.equal_threshold if self.kind == "equal" else 0.0
        if abs(rl - rr) <= threshold:
            return Answer.EQUAL
        if self.kind == "stochastic":
            p_left = 1 / (1 + np.exp(-np.clip(self.p.beta * (rl - rr), -50, 50)))
            better_left = bool(self.rng.random() < p_left)
        else:
            better_left = rl > rr
        if self.kind == "mistake" and self.rng.random() < self.p.epsilon:
            better_left = not better_left
        return Answer.LEFT if better_left else Answer.RIGHT


def answer_pending(store: Store, teacher: Teacher) -> int:
    """Let a synthetic teacher answer every open query; returns how many it answered."""
    n = 0
    for q in store.pending_queries():
        store.add_label(q.id, teacher.answer(store.clip(q.left_id), store.clip(q.right_id)), teacher.name)
        n += 1
    return n


class PacedTeacher:
    """A scripted teacher standing in for a person: on a thread, it claims open queries from the store one at a time
    and answers each `seconds` after it was shown, as a person in the window would (with `shown` times), until
    stopped. The loop waits for it as for a person; tests and benchmarks of the human loop use it."""

    def __init__(self, open_store: Callable[[], Store], teacher: ScriptedTeacher, seconds: float) -> None:
        self.open_store = open_store
        self.teacher = teacher
        self.seconds = seconds
        self.answered = 0
        self.error: BaseException | None = None
        """What stopped the thread, if anything but `stop` did (see `check`)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prefrl-paced-teacher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def check(self) -> None:
        """Raise if the thread has died: a run waiting for its answers would otherwise wait for ever."""
        if self.error is not None:
            raise PrefrlError(f"the paced teacher stopped answering ({type(self.error).__name__}: {self.error}); "
                              "the labels it gave are in the store: add --resume to the same command to go on") \
                from self.error

    def _run(self) -> None:
        try:
            self._answer_until_stopped()
        except BaseException as e:  # kept for `check`: the loop that waits on this thread raises it
            self.error = e
            raise

    def _answer_until_stopped(self) -> None:
        store = self.open_store()
        name = f"{self.teacher.name}-paced"
        while not self._stop.is_set():
            query = store.claim_next(name)
            if query is None:
                self._stop.wait(0.05)
                continue
            shown = time.time()
            answer = self.teacher.answer(store.clip(query.left_id), store.clip(query.right_id))
            if self._stop.wait(max(0.0, shown + self.seconds - time.time())):
                break
            store.add_label(query.id, answer, name, shown=shown)
            self.answered += 1
