"""Env factories for tests that plug in an env by `package.module:factory` (defined here, nowhere else)."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

from prefrl.core.data import Clip
from prefrl.envs.point_reach import PointReachEnv


class Corridor(gym.Env[np.ndarray, int]):
    """A walker in a 1-D corridor: move left, stay or right; reward is the position reached. Not MuJoCo, no
    get_state(): when a person labels, prefrl records its frames."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.render_mode = render_mode
        self.x = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.5, 0.5))
        return np.array([self.x], dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.x = float(np.clip(self.x + 0.1 * (int(action) - 1), -1, 1))
        return np.array([self.x], dtype=np.float32), self.x, False, False, {}

    def render(self) -> np.ndarray | None:
        img = np.zeros((32, 64, 3), dtype=np.uint8)
        img[12:20, int((self.x + 1) / 2 * 60): int((self.x + 1) / 2 * 60) + 4] = (255, 200, 0)
        return img


def make_corridor(render_mode: str | None = None) -> gym.Env:
    return TimeLimit(Corridor(render_mode), max_episode_steps=40)


def corridor_score(clip: Clip) -> np.ndarray:
    """A scripted score for the corridor: how far left (the opposite of its reward)."""
    return -clip.obs[:, 0]


def make_wrapped_backflip(**kwargs: Any) -> gym.Env:
    """A registered env made with gym.make and wrapped, as research variants are."""
    return gym.wrappers.RecordEpisodeStatistics(gym.make("prefrl/HopperBackflip-v0", **kwargs))


class Blind(Corridor):
    metadata = {"render_modes": [], "render_fps": 10}


def make_blind() -> gym.Env:
    return TimeLimit(Blind(), max_episode_steps=40)


def make_blind_and_rewardless() -> gym.Env:
    env = make_blind()
    env.unwrapped.metadata = {**Blind.metadata, "prefrl_no_reward": True}
    return env


def not_an_env() -> int:
    return 42


def needs_an_argument(size):  # type: ignore[no-untyped-def]
    return PointReachEnv(size=size)


class Ledge(gym.Env[np.ndarray, int]):
    """Staying alive is the task: +1 a step, and the episode terminates when the walker steps off a ledge at
    |x| >= 0.5. Random steps fall off in ~40 steps; a policy that holds the middle lasts the 100-step limit."""

    metadata = {"render_modes": [], "render_fps": 10}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.x = 0.0

    def get_state(self) -> np.ndarray:
        return np.array([self.x])

    def set_state(self, state: np.ndarray) -> None:
        self.x = float(state[0])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.1, 0.1))
        return np.array([self.x], dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.x += 0.1 * (int(action) - 1) + float(self.np_random.normal(0, 0.02))
        return np.array([self.x], dtype=np.float32), 1.0, abs(self.x) >= 0.5, False, {}


def make_ledge() -> gym.Env:
    return TimeLimit(Ledge(), max_episode_steps=100)


def preference_data(model: Any, clip: Any, n: int, val_share: float = 0.3) -> Any:
    """`n` pairs of clips from `clip()` -> (obs, acts, true return, absorbing steps), labelled by their returns;
    the last `val_share` of the pairs held out."""
    import torch

    from prefrl.core.reward.trainer import PreferenceData

    rows = [(clip(), clip()) for _ in range(n)]
    is_val = torch.zeros(n, dtype=torch.bool)
    is_val[int((1 - val_share) * n):] = True

    def side(k: int) -> tuple[Any, Any]:
        feats = torch.stack([model.step_features(pair[k][0], pair[k][1]) for pair in rows])
        return feats, torch.tensor([float(pair[k][3]) for pair in rows])

    (left, left_absorbing), (right, right_absorbing) = side(0), side(1)
    target = torch.tensor([1.0 if a[2] > b[2] else 0.0 for a, b in rows])
    return PreferenceData(left, right, target, is_val, left_absorbing, right_absorbing)


def make_point_reach_dying_once(render_mode: str | None = None) -> gym.Env:
    """prefrl/PointReach-v0 whose process dies (os._exit) once, at its 200th step, the first time it runs with
    PREFRL_TEST_DIE_ONCE naming a file that does not exist yet (it creates it): a worker killed mid-run."""
    return _DyingOnce(TimeLimit(PointReachEnv(render_mode=render_mode), max_episode_steps=50))


class _DyingOnce(gym.Wrapper):
    steps = 0

    def step(self, action: Any) -> Any:
        _DyingOnce.steps += 1
        marker = os.environ.get("PREFRL_TEST_DIE_ONCE")
        if marker and _DyingOnce.steps >= 200 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return self.env.step(action)
