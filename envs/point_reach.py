"""PointReach: a point on a plane moves towards a goal. Small, fast, and not MuJoCo.

It is the toy task of the fast learning-signal test and the worked example of a custom env.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class PointReachEnv(gym.Env[np.ndarray, np.ndarray]):
    """Observation: (x, y, goal_x, goal_y) in [-1, 1]; action: a velocity in [-1, 1]^2, scaled by 0.1.
    Reward: minus the distance to the goal after the step. 50 steps an episode (set at registration).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode: str | None = None, size: int = 128) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.render_mode = render_mode
        self.size = size
        self._pos = np.zeros(2, dtype=np.float32)
        self._goal = np.zeros(2, dtype=np.float32)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self._pos, self._goal]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-1, 1, size=2).astype(np.float32)
        self._goal = self.np_random.uniform(-1, 1, size=2).astype(np.float32)
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = np.clip(np.asarray(action, dtype=np.float32), -1, 1)
        self._pos = np.clip(self._pos + 0.1 * a, -1, 1).astype(np.float32)
        reward = -float(np.linalg.norm(self._pos - self._goal))
        return self._obs(), reward, False, False, {}

    def get_state(self) -> np.ndarray:
        return self._obs()

    def set_state(self, state: np.ndarray) -> None:
        self._pos, self._goal = state[:2].astype(np.float32), state[2:4].astype(np.float32)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        s = self.size
        img = np.full((s, s, 3), 245, dtype=np.uint8)
        yy, xx = np.mgrid[0:s, 0:s]

        def disc(p: np.ndarray, radius: float, colour: tuple[int, int, int]) -> None:
            cx, cy = (p[0] + 1) / 2 * (s - 1), (1 - (p[1] + 1) / 2) * (s - 1)
            img[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2] = colour

        disc(self._goal, s * 0.06, (40, 170, 60))
        disc(self._pos, s * 0.045, (200, 50, 50))
        return img
