"""The reward swap: a VecEnvWrapper that replaces the env's reward and records clips."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np
import torch
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from prefrl.core.data import Clip
from prefrl.core.timing import Timers

RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(obs (N, *obs_shape), acts (N, *act_shape)) -> rewards (N,), one batched call for all env copies."""

StepScore = Callable[[Clip], np.ndarray]
"""A scripted per-step score over a clip (T steps -> (T,)), for tasks whose env has no reward for them."""


def ended_by_termination(done: bool, info: dict) -> bool:
    """An episode that ended on its own (a fall, a goal), not at a time limit: it enters the absorbing state."""
    return bool(done) and not info.get("TimeLimit.truncated", False)


class ClipRecorder:
    """Cuts each env copy's stream of steps into fixed-length clips that never cross an episode boundary.

    The most recent `capacity` clips are kept as candidates for queries. A clip cut short by termination
    is padded with the absorbing state (see `record`); one cut short by a time limit is dropped.
    """

    def __init__(self, n_envs: int, clip_length: int, capacity: int = 2000, absorbing: bool = True) -> None:
        self.clip_length = clip_length
        self.absorbing = absorbing
        self._is_frames = False
        self.clips: deque[Clip] = deque(maxlen=capacity)
        self._obs: list[list[np.ndarray]] = [[] for _ in range(n_envs)]
        self._acts: list[list[np.ndarray]] = [[] for _ in range(n_envs)]
        self._rews: list[list[float]] = [[] for _ in range(n_envs)]
        self._extra: list[list[np.ndarray | None]] = [[] for _ in range(n_envs)]  # state or frame per step
        self._episode = list(range(n_envs))
        self._next_episode = n_envs
        self._t = [0] * n_envs
        self.total_clips = 0

    def record(self, obs: np.ndarray, acts: np.ndarray, true_rewards: np.ndarray, dones: np.ndarray,
               env_step: int, infos: list[dict] | None = None) -> None:
        """One vectorised step; `infos` may carry "prefrl_state" or "prefrl_frame" (see StateRecorder).

        When an episode terminates (not at a time limit) mid-clip and `absorbing` is on, the clip is
        completed with the absorbing state; otherwise the partial clip is dropped.
        """
        obs, acts = np.array(obs, copy=True), np.array(acts, copy=True)  # one copy a step; each copy keeps its row
        rewards, ends = np.asarray(true_rewards, dtype=np.float64).tolist(), np.asarray(dones).tolist()
        for i, done in enumerate(ends):
            info = infos[i] if infos is not None else {}
            self._obs[i].append(obs[i])
            self._acts[i].append(acts[i])
            self._rews[i].append(rewards[i])
            if "prefrl_frame" in info:
                self._is_frames = True
                self._extra[i].append(info.get("prefrl_state", info["prefrl_frame"]))
            else:
                self._extra[i].append(info.get("prefrl_state"))
            if len(self._obs[i]) == self.clip_length or (done and self.absorbing and ended_by_termination(done, info)):
                self._emit(i, env_step)
            self._t[i] += 1
            if done:
                self._clear(i)
                self._t[i] = 0
                self._episode[i] = self._next_episode
                self._next_episode += 1

    def _emit(self, i: int, env_step: int) -> None:
        live = len(self._obs[i])
        pad = self.clip_length - live

        def padded(xs: list) -> np.ndarray:
            return np.stack(xs + [xs[-1]] * pad)

        extra = self._extra[i]
        stacked = padded(extra) if all(e is not None for e in extra) else None  # type: ignore[arg-type]
        self.clips.append(Clip(obs=padded(self._obs[i]), acts=padded(self._acts[i]),
                               true_rewards=np.asarray(self._rews[i] + [0.0] * pad, dtype=np.float32),
                               env_step=env_step, episode=self._episode[i], start=self._t[i] + 1 - live,
                               states=None if self._is_frames else stacked,
                               frames=stacked if self._is_frames else None, absorbing=pad))
        self.total_clips += 1
        self._clear(i)

    def _clear(self, i: int) -> None:
        self._obs[i].clear()
        self._acts[i].clear()
        self._rews[i].clear()
        self._extra[i].clear()

    def forget(self, indices: set[int]) -> None:
        """Drop clips (by position) that have been asked about, so no clip is stored twice."""
        self.clips = deque((c for i, c in enumerate(self.clips) if i not in indices), maxlen=self.clips.maxlen)


_BATCH = 256
"""Steps per reward-model call when a rollout's rewards are computed at its end. Measured for the Atari CNN ensemble
on one CPU thread (ms per 1,024 frames): 3,919 in calls of 8 (a step of 8 copies), 2,554 in calls of 128, 2,688 in
calls of 256, 7,349 in one call of 1,024, whose activations no longer fit the caches."""


class _PendingRollout:
    """The steps of a rollout whose learned rewards are still to be computed."""

    def __init__(self) -> None:
        self.obs: list[np.ndarray] = []
        self.acts: list[np.ndarray] = []
        self.ends: list[np.ndarray] = []
        self.tails: list[np.ndarray] = []
        self.true_at_end: list[np.ndarray] = []

    def add(self, obs: np.ndarray, acts: np.ndarray, ends: np.ndarray, tails: np.ndarray,
            true_sum: np.ndarray) -> None:
        self.obs.append(np.array(obs, copy=True))
        self.acts.append(np.array(acts, copy=True))
        self.ends.append(ends)
        self.tails.append(tails)
        self.true_at_end.append(true_sum.copy())  # the true episode return where an episode ends at this step


class RewardVecEnvWrapper(VecEnvWrapper):
    """Replaces the env's reward with `reward_fn(obs, action)` and records every step into clips.

    The true reward stays visible to loggers as ``info["true_reward"]``; episode sums of both rewards
    are kept in `episode_returns` as (true return, predicted return). With `true_score`, the true reward is
    that scripted score of each step (from the recorded state), not the env's own: what synthetic teachers
    judge by is what the agent is measured on, and what `reward_fn=None` trains on.

    With `absorbing_reward`, an episode that terminates before its time limit `horizon` also receives
    the discounted reward of the absorbing state for the steps it would have had left, on its last step.

    Between `begin_rollout` and `end_rollout` (PPO's rollout, while the reward model's weights are held still) the
    learned reward is not computed step by step: each step returns 0 and `end_rollout` computes the rollout's
    rewards in batched calls, which the agent adds into its rollout buffer (`RolloutRewards`). The rewards are
    the same; the per-call overhead of a small model, paid every step, is paid once a rollout.
    """

    def __init__(self, venv: VecEnv, reward_fn: RewardFn | None, recorder: ClipRecorder | None = None,
                 absorbing_reward: Callable[[], float] | None = None, gamma: float = 0.99,
                 horizon: int | None = None, true_score: StepScore | None = None) -> None:
        super().__init__(venv)
        self.reward_fn = reward_fn
        self.true_score = true_score
        self.recorder = recorder
        self.absorbing_reward = absorbing_reward
        self.gamma = gamma
        self.horizon = horizon
        self._episode_steps = np.zeros(self.num_envs, dtype=np.int64)
        self.env_step = 0
        self._last_obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._true_sum = np.zeros(self.num_envs)
        self._pred_sum = np.zeros(self.num_envs)
        self.episode_returns: deque[tuple[float, float]] = deque(maxlen=1000)
        self.timers: Timers | None = None
        """Where set, the seconds of env stepping, reward inference and clip recording are added to it."""
        self._rollout: _PendingRollout | None = None

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self._last_obs = np.asarray(obs)
        self._true_sum[:] = 0
        self._pred_sum[:] = 0
        self._episode_steps[:] = 0
        return obs  # type: ignore[return-value]

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        t0 = time.perf_counter()
        obs, true_rewards, dones, infos = self.venv.step_wait()
        t1 = time.perf_counter()
        if self._last_obs is None or self._actions is None:
            raise RuntimeError("RewardVecEnvWrapper.step before reset: call reset() first")
        prev_obs, acts = self._last_obs, self._actions
        if self.true_score is not None:
            true_rewards = self._scores(self.true_score, prev_obs, acts, true_rewards, infos)
        pending = self._rollout
        if self.reward_fn is None:
            rewards = np.asarray(true_rewards, dtype=np.float32).reshape(self.num_envs)
        elif pending is not None:
            rewards = np.zeros(self.num_envs, dtype=np.float32)  # computed for the whole rollout at its end
        else:
            rewards = np.asarray(self.reward_fn(prev_obs, acts), dtype=np.float32).reshape(self.num_envs)
        t2 = time.perf_counter()
        self.env_step += self.num_envs
        self._episode_steps += 1
        tails = np.zeros(self.num_envs, dtype=np.float32)
        if self.absorbing_reward is not None:
            for k in np.flatnonzero(dones):
                if ended_by_termination(dones[k], infos[k]):
                    tails[k] = self.tail_weight(int(self._episode_steps[k]))
            if pending is None and tails.any():
                rewards += self.absorbing_reward() * tails
        if self.recorder is not None:
            self.recorder.record(prev_obs, acts, true_rewards, dones, self.env_step, infos)
        if self.timers is not None:
            self.timers.add("env", t1 - t0)
            self.timers.add("reward_inference", t2 - t1)
            self.timers.add("clip_recording", time.perf_counter() - t2)
        self._true_sum += true_rewards
        ended = np.asarray(dones, dtype=bool).reshape(self.num_envs)
        if pending is not None:
            pending.add(prev_obs, acts, ended, tails, self._true_sum)
        else:
            self._pred_sum += rewards
        for i, done in enumerate(dones):
            infos[i]["true_reward"] = float(true_rewards[i])
            if done:
                if pending is None:
                    self.episode_returns.append((float(self._true_sum[i]), float(self._pred_sum[i])))
                    self._pred_sum[i] = 0
                self._true_sum[i] = 0
                self._episode_steps[i] = 0
        self._last_obs = np.asarray(obs)
        return obs, rewards, dones, infos

    # -- the learned reward a rollout at a time --------------------------------------------------------------
    def begin_rollout(self) -> None:
        """From here to `end_rollout`, steps return a learned reward of 0 and are kept for one batched call."""
        self._rollout = _PendingRollout() if self.reward_fn is not None else None

    def end_rollout(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The learned rewards (T, N) of the steps since `begin_rollout`, absorbing tails included, and their
        episode ends (T, N); None when the rewards were given step by step (no learned reward, or no rollout
        begun). The predicted episode returns of `episode_returns` are completed here."""
        pending, self._rollout = self._rollout, None
        if pending is None or not pending.obs or self.reward_fn is None:
            return None
        start = time.perf_counter()
        obs, acts = np.stack(pending.obs), np.stack(pending.acts)  # (T, N, ...)
        steps, n = obs.shape[:2]
        obs, acts = obs.reshape(steps * n, *obs.shape[2:]), acts.reshape(steps * n, *acts.shape[2:])
        rewards = np.concatenate([np.asarray(self.reward_fn(obs[i:i + _BATCH], acts[i:i + _BATCH]),
                                             dtype=np.float32).reshape(-1)
                                  for i in range(0, len(obs), _BATCH)]).reshape(steps, n)
        tails = np.stack(pending.tails)
        if self.absorbing_reward is not None and tails.any():
            rewards += np.float32(self.absorbing_reward()) * tails
        if self.timers is not None:
            self.timers.add("reward_inference", time.perf_counter() - start)
        ends = np.stack(pending.ends)
        for t in range(steps):
            self._pred_sum += rewards[t]
            for i in np.flatnonzero(ends[t]):
                self.episode_returns.append((float(pending.true_at_end[t][i]), float(self._pred_sum[i])))
                self._pred_sum[i] = 0
        return rewards, ends

    def _scores(self, score: StepScore, obs: np.ndarray, acts: np.ndarray, env_rewards: np.ndarray,
                infos: list[dict]) -> np.ndarray:
        """This step's score for every env copy in one call: the copies' steps as the steps of one clip (a
        step's score depends on that step alone)."""
        states = [info.get("prefrl_state") for info in infos]
        step = Clip(obs=obs, acts=acts, true_rewards=env_rewards,
                    states=None if any(s is None for s in states) else np.stack(states))  # type: ignore[arg-type]
        return np.asarray(score(step), dtype=np.float32).reshape(self.num_envs)

    def tail_weight(self, steps_taken: int) -> float:
        """Discounted number of absorbing steps after a termination at `steps_taken`, seen from the last step."""
        g = self.gamma
        if self.horizon is None:
            return g / (1 - g) if g < 1 else 0.0
        left = max(self.horizon - steps_taken, 0)
        return g * (1 - g**left) / (1 - g) if g < 1 else float(left)


class RolloutRewardNormalize(VecNormalize):
    """VecNormalize for a learned reward given a rollout at a time: while `deferred`, steps leave the reward
    statistics alone (their reward is a placeholder 0), and `normalise_rollout` then updates the statistics and scales
    the rollout's rewards step by step, in order, as VecNormalize does when the rewards come with the steps."""

    deferred = False

    def step_wait(self) -> VecEnvStepReturn:
        if not self.deferred:
            return super().step_wait()
        held = self.returns  # the discounted returns the statistics follow: left as they were until the rollout ends
        self.returns = np.zeros_like(held)
        try:
            return super().step_wait()
        finally:
            self.returns = held

    def _update_reward(self, reward: np.ndarray) -> None:
        if not self.deferred:
            super()._update_reward(reward)

    def normalise_rollout(self, rewards: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """The rollout's rewards (T, N), scaled as VecNormalize would have scaled them step by step."""
        out = np.empty(rewards.shape, dtype=np.float32)
        for t in range(len(rewards)):
            if self.training:
                VecNormalize._update_reward(self, rewards[t])
            out[t] = self.normalize_reward(rewards[t])
            self.returns[ends[t]] = 0
        return out


class RolloutRewards:
    """Gives PPO the learned reward a rollout at a time. `begin` (at the rollout's start) makes the wrapper keep the
    steps; `finish` (at its end, before PPO's update) computes their rewards in one call, scales them as the
    normaliser `outer` would have (when there is one), adds them into the rollout buffer (which holds only the value
    bootstraps of truncated episodes so far) and recomputes its returns and advantages.

    Off (each step's reward computed with the step, as before) without a learned reward, with `per_step`, or
    with a plain VecNormalize (an agent checkpointed by an older prefrl) around the wrapper.
    """

    def __init__(self, wrapper: RewardVecEnvWrapper, outer: VecEnv, per_step: bool = False) -> None:
        self.wrapper = wrapper
        self.normaliser = outer if isinstance(outer, RolloutRewardNormalize) else None
        plain = isinstance(outer, VecNormalize) and self.normaliser is None
        self.on = wrapper.reward_fn is not None and not per_step and not plain

    def begin(self) -> None:
        if self.on:
            self.wrapper.begin_rollout()
            if self.normaliser is not None:
                self.normaliser.deferred = True

    def finish(self, buffer: RolloutBuffer, last_values: torch.Tensor, last_dones: np.ndarray) -> None:
        if not self.on:
            return
        if self.normaliser is not None:
            self.normaliser.deferred = False
        got = self.wrapper.end_rollout()
        if got is None:
            return
        rewards, ends = got
        if rewards.shape != buffer.rewards.shape:
            raise RuntimeError(f"the rollout kept {rewards.shape} steps, PPO's buffer holds {buffer.rewards.shape}: "
                               "the wrapper was stepped outside PPO's rollout")
        if self.normaliser is not None:
            rewards = self.normaliser.normalise_rollout(rewards, ends)
        buffer.rewards += rewards
        buffer.compute_returns_and_advantage(last_values=last_values, dones=last_dones)
