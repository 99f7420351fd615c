"""The HopperBackflip variants tried in docs/backflip.md (sessions 4 to 6), kept so those runs can be repeated.

Run from this folder, so that `backflip_variants` imports (prefrl puts the working directory on the path):

    cd scripts
    prefrl train --env backflip_variants:hopper_cut_when_lying --agent.n-steps 512 \\
        --labels 1000 --queries.selection disagreement --queries.clip-length 50 --steps 1500000 --seed 1
    prefrl train --env prefrl/HopperBackflip-v0 --teacher-score backflip_variants:standing_bonus_from_the_start ...

`hopper_cut_when_lying` is a custom env by factory path, so it takes SB3's default rollout: `--agent.n-steps 512`
gives it HopperBackflip's preset. Session 4's runs used the score shipped then: add
`--teacher-score backflip_variants:standing_bonus_from_the_start` to repeat them. None of these is shipped.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

import prefrl.envs  # noqa: F401  (registers prefrl/HopperBackflip-v0)
from prefrl.data import Clip
from prefrl.envs.backflip import HOPPER_NQ, LYING_HEIGHT, _rotation, _standing, _states, backflip_score


class CutWhenLying(gym.Wrapper):
    """Ends an episode (truncated, not terminated) once the torso has stayed below 0.5 m for `steps` steps.

    A fallen hopper rarely gets up, so most of a 1,000-step episode is spent lying; cutting it short gives more
    episodes that start standing. It is a truncation, so PPO still values the lying state as going on."""

    def __init__(self, env: gym.Env, steps: int = 50) -> None:
        super().__init__(env)
        self.steps = steps
        self.lying = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.lying = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        height = float(self.env.unwrapped.data.qpos[1])  # type: ignore[attr-defined]
        self.lying = self.lying + 1 if height < LYING_HEIGHT else 0
        return obs, reward, terminated, truncated or self.lying >= self.steps, info


def hopper_cut_when_lying(render_mode: str | None = None) -> gym.Env:
    """prefrl/HopperBackflip-v0 (its score and metadata included) whose episodes end after 50 steps lying."""
    return CutWhenLying(gym.make("prefrl/HopperBackflip-v0", render_mode=render_mode))


def standing_bonus_from_the_start(clip: Clip) -> np.ndarray:
    """The score shipped as `backflip_score` in sessions 3 and 4: the same rotation term, but +0.02 for every
    step standing, flips or not, and lying judged by height alone (torso below 0.5 m). Standing still for a
    whole episode (20) outscored the flips PPO learned on it (about 8): the trap docs/backflip.md describes."""
    qpos, qvel = _states(clip, HOPPER_NQ)
    return _rotation(qpos, qvel) + 0.02 * _standing(qpos) - 0.05 * (qpos[:, 1] < LYING_HEIGHT)


def smaller_standing_bonus(clip: Clip) -> np.ndarray:
    """`standing_bonus_from_the_start` with 0.01 instead of 0.02 for each step standing."""
    return standing_bonus_from_the_start(clip) - 0.01 * _standing(_states(clip, HOPPER_NQ)[0])


FAST_TURN = 0.03
"""Backward rotation per step (rad) that `fast_turns` does not pay for: a slow creep over is worth nothing."""


def fast_turns(clip: Clip) -> np.ndarray:
    """`backflip_score` with the rotation term paid only above FAST_TURN rad a step (the part above it), so
    turning slowly over onto the head, which the preference-trained agents of session 5 learned, earns nothing.
    Turning forwards still costs, and standing and lying are scored as before."""
    qpos, qvel = _states(clip, HOPPER_NQ)
    return backflip_score(clip) - np.clip(_rotation(qpos, qvel), 0.0, FAST_TURN)


standing_after_turns = backflip_score
"""The name session 5's runs gave the score (their config.json records it) before it was shipped."""
