"""The data that flows round the loop: clips of behaviour, queries about them, and labels."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

_NPZ_HEADERS = threading.Lock()
"""Held while a clip is read: np.load parses each array's header with ast.literal_eval, and CPython 3.11's AST
constructor keeps one recursion count per interpreter, so two threads parsing at once (a paced teacher reading clips
while the reward fit does) can fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython
gh-106905). It killed a paced teacher's thread in session 31."""


class Answer(StrEnum):
    """A teacher's answer to a comparison query."""

    LEFT = "left"
    RIGHT = "right"
    EQUAL = "equal"
    SKIP = "skip"

    @property
    def target(self) -> float | None:
        """Probability that the left clip is better, as the reward model learns it (None: no information)."""
        return {Answer.LEFT: 1.0, Answer.RIGHT: 0.0, Answer.EQUAL: 0.5, Answer.SKIP: None}[self]


@dataclass(frozen=True, eq=False)
class Clip:
    """A fixed-length segment of one episode of one environment copy.

    Attributes:
        obs: (T, *obs_shape) observation seen before each step.
        acts: (T, *act_shape) action taken at each step.
        true_rewards: (T,) the environment's own reward, or the run's scripted score in its place (NaN where
            there is neither).
        env_step: the agent's global step count when the clip ended.
        episode: a number for the episode the clip comes from (unique within a run).
        start: step within that episode where the clip starts.
        states: (T, S) simulator state before each step, for re-rendering (MuJoCo qpos|qvel), or None.
        frames: (T, H, W, 3) uint8 frames recorded while acting, when state cannot be restored, or None.
        absorbing: how many of the last steps are the absorbing state after the episode terminated: there
            obs, acts, states and frames repeat the last real step and the true reward is 0.
        id: the clip's row in the preference store, once stored.
        prompt: for a text policy, the prompt the completion answers (obs then holds the token ids of prompt and
            completion as one step, (1, L)), or None.
        completion: for a text policy, the completion itself, or None.
    """

    obs: np.ndarray
    acts: np.ndarray
    true_rewards: np.ndarray
    env_step: int = 0
    episode: int = 0
    start: int = 0
    states: np.ndarray | None = None
    frames: np.ndarray | None = None
    absorbing: int = 0
    id: int | None = field(default=None, compare=False)
    prompt: str | None = None
    completion: str | None = None

    @property
    def length(self) -> int:
        return int(self.obs.shape[0])

    @property
    def true_return(self) -> float:
        return float(np.sum(self.true_rewards))

    def to_bytes(self) -> bytes:
        arrays = {"obs": self.obs, "acts": self.acts, "true_rewards": self.true_rewards}
        if self.states is not None:
            arrays["states"] = self.states
        if self.frames is not None:
            arrays["frames"] = self.frames
        if self.absorbing:
            arrays["absorbing"] = np.asarray(self.absorbing)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes, *, id: int | None = None, env_step: int = 0, episode: int = 0,
                   start: int = 0) -> Clip:
        with _NPZ_HEADERS, np.load(io.BytesIO(blob)) as z:
            return cls(obs=z["obs"], acts=z["acts"], true_rewards=z["true_rewards"], env_step=env_step,
                       episode=episode, start=start, states=z["states"] if "states" in z else None,
                       frames=z["frames"] if "frames" in z else None,
                       absorbing=int(z["absorbing"]) if "absorbing" in z else 0, id=id)


@dataclass(frozen=True)
class Query:
    """A question put to a teacher: which of two stored clips is better."""

    id: int
    left_id: int
    right_id: int
    created: float
    env_step: int


@dataclass(frozen=True)
class Label:
    """A teacher's answer to a query, as committed to the store."""

    id: int
    query_id: int
    answer: Answer
    labeler: str
    created: float
    """When the answer was given (time.time())."""
    shown: float | None = None
    """When the labeller was shown the query, where the interface told the store (the window, the web page)."""
