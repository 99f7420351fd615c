"""Where a run's time goes: wall-clock seconds per stage of the loop, accumulated over the run.

Stages are named by the code that times them (`with timers("reward_fit"): ...`); `STAGES` lists the ones the loop
reports, in the order of the report's table. A run's totals are kept in its checkpoint, so a resumed run adds to
them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = {
    "env": "env stepping (the simulator, all env copies)",
    "policy_inference": "policy inference and SB3's rollout bookkeeping",
    "policy_update": "policy update (PPO's gradient steps)",
    "reward_inference": "reward inference (the learned reward of every step)",
    "clip_recording": "clip recording",
    "random_policy": "stage 1: the random policy's steps",
    "store": "asking and answering (pair selection, store writes, a scripted teacher)",
    "reward_fit": "reward-model fitting on the agent's path (with --reward-model.background: waiting for a fit)",
    "reward_fit_background": "reward-model fitting on the background thread, beside PPO (not on its path)",
    "waiting": "waiting for a person",
    "evaluation": "evaluation episodes",
    "checkpoint": "checkpoints",
}
"""Stage name -> what it covers."""


class Timers:
    """Seconds per stage. Nested stages are counted in both (the loop avoids nesting the ones it reports)."""

    def __init__(self, seconds: dict[str, float] | None = None) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0) | dict(seconds or {})

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def columns(self) -> dict[str, float]:
        """The totals as metrics.csv columns: `t_<stage>` in seconds."""
        return {f"t_{k}": round(v, 2) for k, v in self.seconds.items()}
