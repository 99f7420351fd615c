"""The reward swap: a VecEnvWrapper that replaces the env's reward and records clips."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from prefrl.data import Clip

RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(obs (N, *obs_shape), acts (N, *act_shape)) -> rewards (N,), one batched call for all env copies."""


class ClipRecorder:
    """Cuts each env copy's stream of steps into fixed-length clips that never cross an episode boundary.

    The most recent `capacity` clips are kept as candidates for queries; the partial clip at the end of
    an episode is dropped.
    """

    def __init__(self, n_envs: int, clip_length: int, capacity: int = 2000) -> None:
        self.clip_length = clip_length
        self.clips: deque[Clip] = deque(maxlen=capacity)
        self._obs: list[list[np.ndarray]] = [[] for _ in range(n_envs)]
        self._acts: list[list[np.ndarray]] = [[] for _ in range(n_envs)]
        self._rews: list[list[float]] = [[] for _ in range(n_envs)]
        self._extra: list[list[np.ndarray | None]] = [[] for _ in range(n_envs)]  # state or frame per step
        self._episode = np.arange(n_envs)
        self._next_episode = n_envs
        self._t = np.zeros(n_envs, dtype=np.int64)
        self.total_clips = 0

    def record(self, obs: np.ndarray, acts: np.ndarray, true_rewards: np.ndarray, dones: np.ndarray,
               env_step: int, infos: list[dict] | None = None) -> None:
        """One vectorised step; `infos` may carry "prefrl_state" or "prefrl_frame" (see StateRecorder)."""
        for i in range(len(dones)):
            self._obs[i].append(np.array(obs[i], copy=True))
            self._acts[i].append(np.array(acts[i], copy=True))
            self._rews[i].append(float(true_rewards[i]))
            info = infos[i] if infos is not None else {}
            self._extra[i].append(info.get("prefrl_state", info.get("prefrl_frame")))
            if len(self._obs[i]) == self.clip_length:
                start = int(self._t[i]) + 1 - self.clip_length
                extra = self._extra[i]
                stacked = np.stack(extra) if all(e is not None for e in extra) else None  # type: ignore[arg-type]
                is_frames = "prefrl_frame" in info
                self.clips.append(Clip(obs=np.stack(self._obs[i]), acts=np.stack(self._acts[i]),
                                       true_rewards=np.asarray(self._rews[i], dtype=np.float32),
                                       env_step=env_step, episode=int(self._episode[i]), start=start,
                                       states=None if is_frames else stacked, frames=stacked if is_frames else None))
                self.total_clips += 1
                self._clear(i)
            self._t[i] += 1
            if dones[i]:
                self._clear(i)
                self._t[i] = 0
                self._episode[i] = self._next_episode
                self._next_episode += 1

    def _clear(self, i: int) -> None:
        self._obs[i].clear()
        self._acts[i].clear()
        self._rews[i].clear()
        self._extra[i].clear()

    def forget(self, indices: set[int]) -> None:
        """Drop clips (by position) that have been asked about, so no clip is stored twice."""
        self.clips = deque((c for i, c in enumerate(self.clips) if i not in indices), maxlen=self.clips.maxlen)

    def recent_steps(self) -> tuple[np.ndarray, np.ndarray]:
        """All (obs, acts) of the buffered clips, for normalising the reward model's output."""
        obs = np.concatenate([c.obs for c in self.clips])
        acts = np.concatenate([c.acts for c in self.clips])
        return obs, acts


class RewardVecEnvWrapper(VecEnvWrapper):
    """Replaces the env's reward with `reward_fn(obs, action)` and records every step into clips.

    The true reward stays visible to loggers as ``info["true_reward"]``; episode sums of both rewards
    are kept in `episode_returns` as (true return, predicted return).
    """

    def __init__(self, venv: VecEnv, reward_fn: RewardFn | None, recorder: ClipRecorder | None = None) -> None:
        super().__init__(venv)
        self.reward_fn = reward_fn
        self.recorder = recorder
        self.env_step = 0
        self._last_obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._true_sum = np.zeros(self.num_envs)
        self._pred_sum = np.zeros(self.num_envs)
        self.episode_returns: deque[tuple[float, float]] = deque(maxlen=1000)

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self._last_obs = np.asarray(obs)
        self._true_sum[:] = 0
        self._pred_sum[:] = 0
        return obs  # type: ignore[return-value]

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, true_rewards, dones, infos = self.venv.step_wait()
        assert self._last_obs is not None and self._actions is not None, "step before reset"
        prev_obs, acts = self._last_obs, self._actions
        rewards = true_rewards if self.reward_fn is None else self.reward_fn(prev_obs, acts)
        rewards = np.asarray(rewards, dtype=np.float32).reshape(self.num_envs)
        self.env_step += self.num_envs
        if self.recorder is not None:
            self.recorder.record(prev_obs, acts, true_rewards, dones, self.env_step, infos)
        self._true_sum += true_rewards
        self._pred_sum += rewards
        for i, done in enumerate(dones):
            infos[i]["true_reward"] = float(true_rewards[i])
            if done:
                self.episode_returns.append((float(self._true_sum[i]), float(self._pred_sum[i])))
                self._true_sum[i] = 0
                self._pred_sum[i] = 0
        self._last_obs = np.asarray(obs)
        return obs, rewards, dones, infos
