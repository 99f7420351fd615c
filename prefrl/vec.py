"""Vectorised environments for the agent."""

from __future__ import annotations

from functools import partial

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from prefrl.environments import make_env


def _monitored(spec: str) -> gym.Env:
    return Monitor(make_env(spec))


def make_vec_env(spec: str, n_envs: int, seed: int) -> VecEnv:
    """`n_envs` copies of the env in this process (each Monitor-wrapped, so SB3 logs the true return)."""
    make_env(spec).close()  # fail here, with the clear error, rather than inside a worker
    venv = DummyVecEnv([partial(_monitored, spec) for _ in range(n_envs)])
    venv.seed(seed)
    return venv
