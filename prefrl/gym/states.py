"""Cheap per-step state for render on demand: record it while acting, restore it to draw a clip later.

MuJoCo envs save qpos|qvel; Atari games their emulator state (see prefrl.gym.atari); any env with
`get_state()`/`set_state(state)` on its unwrapped class works the same way. Other envs fall back to
recording rendered frames, which costs a render per step.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.gym import atari
from prefrl.gym.environments import is_mujoco


def can_restore(env: gym.Env) -> bool:
    u = env.unwrapped
    if is_mujoco(env) or atari.is_atari(env):
        return True
    return callable(getattr(u, "get_state", None)) and callable(getattr(u, "set_state", None))


def capture(env: gym.Env) -> np.ndarray:
    u: Any = env.unwrapped
    if is_mujoco(env):
        return np.concatenate([u.data.qpos, u.data.qvel]).astype(np.float64)
    if atari.is_atari(env):
        return atari.capture_state(env)
    return np.array(u.get_state(), dtype=np.float64, copy=True)


def restore(env: gym.Env, state: np.ndarray) -> None:
    u: Any = env.unwrapped
    if is_mujoco(env):
        nq = u.model.nq
        u.set_state(state[:nq], state[nq:])
    elif atari.is_atari(env):
        atari.restore_state(env, state)
    else:
        u.set_state(state)


class StateRecorder(gym.Wrapper):
    """Adds to each step's info what is needed to draw the observation the step started from:
    ``info["prefrl_state"]`` (restorable envs) or ``info["prefrl_frame"]`` (others, when `frames` is on).
    """

    def __init__(self, env: gym.Env, frames: bool = False) -> None:
        super().__init__(env)
        self.restorable = can_restore(env)
        self.frames = frames and not self.restorable
        self._before: np.ndarray | None = None

    def _capture(self) -> np.ndarray | None:
        if self.restorable:
            return capture(self.env)
        if self.frames:
            return np.asarray(self.env.render(), dtype=np.uint8)
        return None

    def reset(self, **kwargs: Any):  # type: ignore[no-untyped-def]
        obs, info = self.env.reset(**kwargs)
        self._before = self._capture()
        return obs, info

    def step(self, action: Any):  # type: ignore[no-untyped-def]
        before = self._before
        obs, reward, terminated, truncated, info = self.env.step(action)
        if before is not None:
            info["prefrl_state" if self.restorable else "prefrl_frame"] = before
        self._before = self._capture()
        return obs, reward, terminated, truncated, info
