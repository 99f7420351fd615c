"""Making environments from a registered id or a user's `package.module:factory`."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.core.loading import load_callable
from prefrl.errors import PrefrlError


def _register_optional_families(env_id: str) -> None:
    if env_id.startswith("prefrl/"):
        importlib.import_module("prefrl.envs")
    if env_id.startswith("ALE/"):
        try:
            ale_py = importlib.import_module("ale_py")
        except ImportError as e:
            raise PrefrlError(f"'{env_id}' is an Atari game: install the extra with "
                              "`pip install 'prefrl[atari]'`") from e
        gym.register_envs(ale_py)


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def is_factory(spec: str) -> bool:
    """Whether an env spec names a factory (`package.module:function`) rather than a registered id
    (`ns/Name-v0`, whose namespace may hold a colon-free path)."""
    return ":" in spec and "/" not in spec.split(":")[0]


def make_env(spec: str, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """Create one environment.

    Args:
        spec: a registered Gymnasium id (``HalfCheetah-v5``, ``prefrl/PointReach-v0``) or
            ``package.module:factory``, a callable returning a ``gymnasium.Env``.
        render_mode: passed to the env (``"rgb_array"`` for videos and clips).

    Example:
        >>> env = make_env("prefrl/PointReach-v0")
    """
    if is_factory(spec):
        factory = load_callable(spec)
        if render_mode is not None and _accepts(factory, "render_mode"):
            kwargs["render_mode"] = render_mode
        try:
            inspect.signature(factory).bind(**kwargs)
        except (TypeError, ValueError) as e:
            raise PrefrlError(f"factory '{spec}' cannot be called as factory({', '.join(kwargs)}) ({e}): give "
                              "its other parameters defaults (render_mode=None is optional)") from e
        env = factory(**kwargs)
        if not isinstance(env, gym.Env):
            raise PrefrlError(f"factory '{spec}' returned {type(env).__name__}, not a gymnasium.Env: make it "
                              "return the environment itself")
        return env
    _register_optional_families(spec)
    try:
        return gym.make(spec, render_mode=render_mode, **kwargs)
    except gym.error.Error as e:
        if not isinstance(e, (gym.error.NameNotFound, gym.error.NamespaceNotFound,
                              gym.error.VersionNotFound, gym.error.DeprecatedEnv)):
            raise
        close = difflib.get_close_matches(spec, list(gym.registry.keys()), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise PrefrlError(f"unknown env id '{spec}'.{hint} Pass a registered Gymnasium id "
                          "(e.g. HalfCheetah-v5) or package.module:factory for your own env") from e


class FixedHorizon(gym.Wrapper):
    """Ignores early termination: episodes end only at the time limit (as imitation's `seals` envs do).

    With a learned reward, termination tells the agent something the reward model does not know, and a
    zero-mean learned reward can make ending the episode early look attractive. MuJoCo envs carry on
    simulating after an unhealthy state (Hopper then earns no healthy bonus, so teachers see the fall).
    """

    def step(self, action):  # type: ignore[no-untyped-def]
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["terminated_ignored"] = terminated
        return obs, reward, False, truncated, info


def episode_limit(env: gym.Env) -> int | None:
    """The env's time limit: from its registration, or from a TimeLimit wrapper a factory added."""
    if env.spec is not None and env.spec.max_episode_steps is not None:
        return int(env.spec.max_episode_steps)
    e: Any = env
    while isinstance(e, gym.Wrapper):
        if isinstance(e, gym.wrappers.TimeLimit):
            return int(e._max_episode_steps)
        e = e.env
    return None


def is_mujoco(env: gym.Env) -> bool:
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    return isinstance(env.unwrapped, MujocoEnv)


def env_has_true_reward(env: gym.Env) -> bool:
    """Whether returns of this env mean something (shipped no-reward tasks set `metadata['prefrl_no_reward']`)."""
    return not env.unwrapped.metadata.get("prefrl_no_reward", False)


def score_functions(env: gym.Env, teacher_score: str | None) -> tuple[Callable[..., Any] | None,
                                                                      Callable[..., Any] | None]:
    """(per-step clip score for synthetic teachers, whole-episode score for evaluation), or (None, None) when
    the env's own reward is to be used. `--teacher-score` wins over the per-step score the env's metadata names; a
    whole-episode score the env names (prefrl/HopperBackflip-v0's landed flips) measures the task whatever the
    teachers judge by, and without one an episode scores the sum of the per-step score."""
    meta = env.unwrapped.metadata
    name = teacher_score or meta.get("prefrl_score")
    if not name:
        return None, None
    step = load_callable(name, "score function")
    episode_name = meta.get("prefrl_episode_score")
    episode = load_callable(episode_name, "score function") if episode_name else (
        lambda clip: float(np.sum(step(clip))))
    return step, episode
