"""Scoring an agent: its deterministic policy over fresh episodes on the true reward, and a video of it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from prefrl.core.data import Clip
from prefrl.gym.atari import EMULATOR_FPS, FRAME_SKIP, is_atari_id
from prefrl.gym.environments import make_env
from prefrl.gym.render import playback_fps, render_env, write_mp4
from prefrl.gym.states import StateRecorder
from prefrl.gym.vec import make_vec_env

log = logging.getLogger(__name__)


def _policy_obs(outer: VecEnv | None, obs: np.ndarray) -> np.ndarray:
    return outer.normalize_obs(obs) if isinstance(outer, VecNormalize) else obs  # type: ignore[return-value]


def evaluate_agent(agent: BaseAlgorithm, outer: VecEnv, env_id: str, episodes: int, seed: int,
                   score: Callable[[Clip], float] | None = None) -> float:
    """Mean over `episodes` fresh episodes of the deterministic policy's true return, or of `score` applied
    to each whole episode (as one clip with its recorded states) for tasks whose reward is a scorer."""
    if episodes <= 0:
        return float("nan")
    if is_atari_id(env_id):
        return _evaluate_vec(agent, make_vec_env(env_id, 1, seed), episodes)
    scored = score if score is not None else (lambda clip: clip.true_return)
    return float(np.mean([scored(clip) for clip in episode_clips(agent, outer, env_id, episodes, seed)]))


EVAL_SEED_OFFSET = 10_000
"""Evaluation episodes start from seeds run seed + this (+1, ...), away from the seeds the agent trains on."""


class UniformRandom:
    """A policy that samples every action uniformly from the action space (seeded): the baseline that benchmark
    ratios are normalised by, (R - R_random) / (R_true - R_random)."""

    def __init__(self, action_space: gym.Space, seed: int) -> None:
        self.space = action_space
        self.space.seed(seed)

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        batch = len(obs) if isinstance(self.space, gym.spaces.Discrete) and np.ndim(obs) == 4 else None
        if batch is not None:  # a vectorised Atari view: one action per copy
            return np.array([self.space.sample() for _ in range(batch)]), None
        return np.asarray(self.space.sample()), None


def random_return(env_id: str, episodes: int, seed: int, score: Callable[[Clip], float] | None = None) -> float:
    """Mean true return (or `score`) of a uniform-random policy over the evaluation episodes `evaluate_agent` plays
    with the same `seed` (the same starting states)."""
    if episodes <= 0:
        return float("nan")
    if is_atari_id(env_id):
        venv = make_vec_env(env_id, 1, seed)
        return _evaluate_vec(UniformRandom(venv.action_space, seed), venv, episodes)  # type: ignore[arg-type]
    env = make_env(env_id)
    try:
        policy = UniformRandom(env.action_space, seed)
        scored = score if score is not None else (lambda clip: clip.true_return)
        return float(np.mean([scored(c) for c in _play(policy, None, env, episodes, seed)]))  # type: ignore[arg-type]
    finally:
        env.close()


def episode_clips(agent: BaseAlgorithm, outer: VecEnv | None, env_id: str, episodes: int, seed: int,
                  deterministic: bool = True) -> Iterator[Clip]:
    """Whole episodes of the policy (deterministic unless told; seeds `seed`, `seed`+1, ...), each as one clip with
    the env's reward and, where the env can save it, the state before each step."""
    env = make_env(env_id)
    try:
        yield from _play(agent, outer, env, episodes, seed, deterministic=deterministic)
    finally:
        env.close()


def _play(agent: BaseAlgorithm, outer: VecEnv | None, env: gym.Env, episodes: int, seed: int,
          max_steps: int | None = None, deterministic: bool = True) -> Iterator[Clip]:
    """Episodes of the policy (deterministic unless told) in `env` (cut after `max_steps`), each as one clip; with
    the frame before each step when the env renders rgb_array."""
    env = StateRecorder(env)
    draw = env.render_mode == "rgb_array"
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done = False
        observations: list[np.ndarray] = []
        actions: list[np.ndarray] = []
        rewards: list[float] = []
        states: list[np.ndarray] = []
        frames: list[np.ndarray] = []
        while not done and len(actions) != max_steps:
            if draw:
                frames.append(np.asarray(env.render(), dtype=np.uint8))
            action, _ = agent.predict(_policy_obs(outer, obs[None])[0], deterministic=deterministic)
            observations.append(obs)
            actions.append(action)
            obs, r, terminated, truncated, info = env.step(action)
            rewards.append(float(r))
            if "prefrl_state" in info:  # envs whose state cannot be saved record none
                states.append(info["prefrl_state"])
            done = terminated or truncated
        yield Clip(obs=np.stack(observations), acts=np.stack(actions), true_rewards=np.asarray(rewards),
                   states=np.stack(states) if states else None,
                   frames=np.stack(frames) if draw else None)


def _evaluate_vec(agent: BaseAlgorithm, venv: VecEnv, episodes: int) -> float:
    """Mean game score over `episodes` whole games in the agent's own view of the env (Monitor's episode info)."""
    scores: list[float] = []
    obs = venv.reset()
    while len(scores) < episodes:
        action, _ = agent.predict(obs, deterministic=True)  # type: ignore[arg-type]
        obs, _, _, infos = venv.step(action)
        scores += [float(i["episode"]["r"]) for i in infos if "episode" in i]
    venv.close()
    return float(np.mean(scores[:episodes]))


def _video_vec(agent: BaseAlgorithm, env_id: str, path: Path, steps: int, seed: int) -> None:
    venv = make_vec_env(env_id, 1, seed, render_mode="rgb_array")
    obs = venv.reset()
    frames = []
    for _ in range(steps):
        frames.append(np.asarray(venv.get_images()[0], dtype=np.uint8))
        action, _ = agent.predict(obs, deterministic=True)  # type: ignore[arg-type]
        obs, _, _, _ = venv.step(action)
    venv.close()
    write_mp4(path, np.stack(frames), EMULATOR_FPS / FRAME_SKIP)


def record_video(agent: BaseAlgorithm, outer: VecEnv, env_id: str, path: Path, steps: int, seed: int) -> None:
    """Write an mp4 of the deterministic policy acting for `steps` steps."""
    if is_atari_id(env_id):  # the policy needs stacked, preprocessed frames: act in the agent's own view
        _video_vec(agent, env_id, path, steps, seed)
        return
    env = render_env(env_id)
    frames: list[np.ndarray] = []
    for clip in _play(agent, outer, env, episodes=steps, seed=seed, max_steps=steps):
        if clip.frames is None:
            raise RuntimeError(f"{env_id} rendered no frames: it must be made with render_mode='rgb_array'")
        frames.extend(clip.frames)
        if len(frames) >= steps:
            break
    fps = playback_fps(env)
    env.close()
    write_mp4(path, np.stack(frames[:steps]), fps)
