"""Vectorised environments for the agent."""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from prefrl.gym import atari
from prefrl.gym.environments import FixedHorizon, episode_limit, make_env
from prefrl.gym.states import StateRecorder, can_restore


def _monitored(spec: str, fixed_horizon: bool, record_frames: bool, env_kwargs: dict[str, Any]) -> gym.Env:
    render_mode = "rgb_array" if record_frames else None
    env: gym.Env = StateRecorder(make_env(spec, render_mode=render_mode, **env_kwargs), record_frames)
    return Monitor(FixedHorizon(env) if fixed_horizon else env)


def _atari(spec: str, render_mode: str | None) -> gym.Env:
    # Monitor innermost: it logs whole games, not lives; the state is recorded between agent steps.
    return StateRecorder(atari.preprocess(Monitor(atari.make_base(spec, render_mode))))


def make_vec_env(spec: str, n_envs: int, seed: int, fixed_horizon: bool = False,
                 frames_if_needed: bool = False, render_mode: str | None = None,
                 probe: gym.Env | None = None, env_kwargs: dict[str, Any] | None = None) -> VecEnv:
    """`n_envs` copies of the env in this process (each Monitor-wrapped, so SB3 logs the true return).

    Every step records the simulator state for render on demand; an env whose state cannot be restored
    records rendered frames instead, when `frames_if_needed` (a person will watch its clips). Atari games
    get SB3's Atari preprocessing and frame stack (prefrl.gym.atari), so the reward model sees what the agent sees;
    `render_mode` is passed to them (for a video of the agent). `probe`, an instance of the env the caller
    already made, saves making one here to see what kind of env it is (the caller closes it). `env_kwargs` go to
    each copy of a non-Atari env (`--train-env-kwargs`).
    """
    own_probe = probe is None
    probe = make_env(spec) if probe is None else probe  # what kind of env it is decides what each copy records
    is_atari = atari.is_atari(probe)
    fixed_horizon = fixed_horizon and episode_limit(probe) is not None  # without a time limit it would never end
    record_frames = frames_if_needed and not can_restore(probe)
    if own_probe:
        probe.close()
    if is_atari:
        venv: VecEnv = DummyVecEnv([partial(_atari, spec, render_mode) for _ in range(n_envs)])
        venv.seed(seed)
        return atari.stack_frames(venv)
    make = partial(_monitored, spec, fixed_horizon, record_frames, env_kwargs or {})
    venv = DummyVecEnv([make for _ in range(n_envs)])
    venv.seed(seed)
    return venv
