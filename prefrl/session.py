"""The parts of one training run, built from its config (or reloaded from its run directory), for `train()`.

A `Session` holds the env behind the reward wrapper, the agent, the label machinery (`Preferences`, when the
reward is learned) and the run's metrics; it checkpoints, scores and closes them. `prefrl.loop.train` drives it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure as configure_logger
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from tqdm import tqdm

from prefrl import checkpoint
from prefrl.config import AgentConfig, TrainConfig
from prefrl.core.data import Clip
from prefrl.core.labels import Preferences
from prefrl.core.reward.factory import make_reward_model
from prefrl.core.reward.model import RewardModel
from prefrl.core.reward.trainer import RewardStats, RewardTrainer
from prefrl.core.schedule import LabelSchedule
from prefrl.core.selection import make_selector
from prefrl.core.store import PreferenceStore
from prefrl.core.teachers import ScriptedTeacher
from prefrl.errors import PrefrlError
from prefrl.gym.agent import make_agent, policy_device, resolve_agent_config, resolve_device
from prefrl.gym.environments import env_has_true_reward, episode_limit, make_env, score_functions
from prefrl.gym.evaluation import evaluate_agent
from prefrl.gym.vec import make_vec_env
from prefrl.gym.wrapper import ClipRecorder, RewardVecEnvWrapper
from prefrl.run_dir import RunDir

log = logging.getLogger(__name__)


@dataclass
class Session:
    """One run's parts. `resumed`: the run has passed stage 1 before (its checkpoint holds the step count)."""

    cfg: TrainConfig
    run: RunDir
    agent_cfg: AgentConfig
    wrapper: RewardVecEnvWrapper
    outer: VecEnv
    agent: PPO
    model: RewardModel | None
    prefs: Preferences | None
    rng: np.random.Generator
    episode_score: Callable[[Clip], float] | None
    resumed: bool
    bar: tqdm
    t_start: float = field(default_factory=time.time)
    stats: RewardStats | None = None

    # -- building -------------------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def open(cls, cfg: TrainConfig, run: RunDir) -> Iterator[Session]:
        """Build the run's parts (or reload them from its checkpoint); closes the env and store on exit."""
        env_id = cfg.env_id
        agent_cfg = resolve_agent_config(env_id, cfg.agent)
        rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        torch.set_num_threads(cfg.threads)
        human = cfg.teacher == "human"

        probe = make_env(env_id)
        step_score, episode_score = score_functions(probe, cfg.teacher_score)
        _check_teacher(cfg, probe.metadata.get("render_modes", []), env_has_true_reward(probe), step_score)
        horizon = episode_limit(probe)
        venv = make_vec_env(env_id, agent_cfg.n_envs or 1, cfg.seed, cfg.fixed_horizon, frames_if_needed=human,
                            probe=probe)
        probe.close()
        device = resolve_device(cfg.device, "reward_model")
        model: RewardModel | None = None
        if cfg.reward_from is not None:
            model = checkpoint.load_reward_model(cfg.reward_from, venv.observation_space, venv.action_space, device)
        elif cfg.reward == "learned":
            model = make_reward_model(venv.observation_space, venv.action_space, cfg.reward_model).to(device)
        recorder = ClipRecorder(venv.num_envs, cfg.queries.clip_length, cfg.queries.buffer_clips,
                                absorbing=cfg.absorbing) if cfg.asks_for_labels else None
        absorbing = model.absorbing_reward if model is not None and cfg.absorbing else None
        wrapper = RewardVecEnvWrapper(venv, model.reward if model is not None else None, recorder, absorbing,
                                      gamma=agent_cfg.gamma or 0.99, horizon=horizon, true_score=step_score)
        state = run.read_state()
        resumed = "env_steps" in state
        outer, agent = _agent(cfg, agent_cfg, run, wrapper)
        agent.set_logger(configure_logger(str(run.tensorboard), ["tensorboard"]))
        wrapper.env_step = int(state.get("env_steps", 0))
        store = PreferenceStore(run.store, env_id=env_id) if recorder is not None else None
        prefs = None
        if store is not None and recorder is not None and model is not None:
            _check_store_clips(store, cfg)
            trainer = RewardTrainer(model, cfg.reward_model, rng)
            checkpoint.restore_reward_training(run, model, trainer)
            horizon_steps = cfg.steps - cfg.random_steps
            prefs = Preferences(
                store=store, trainer=trainer, source=recorder, rng=rng,
                schedule=LabelSchedule(total=cfg.labels, initial=cfg.initial_labels, horizon=horizon_steps,
                                       t0=max(1.0, cfg.queries.decay * horizon_steps)),
                selector=make_selector(cfg.queries.selection, model, cfg.queries.oversample),
                teacher=None if human else ScriptedTeacher(cfg.teacher, cfg.teacher_params, rng),
                max_open=cfg.queries.max_open if human else None, reference_fraction=cfg.queries.reference_fraction)
        if human and hasattr(os, "nice"):
            os.nice(5)  # a person's time is the scarce one: rendering and the window get the CPU before the agent
        bar = tqdm(total=cfg.steps, initial=wrapper.env_step, unit="step", disable=not cfg.progress,
                   desc=f"{env_id} ({cfg.reward} reward)")
        session = cls(cfg, run, agent_cfg, wrapper, outer, agent, model, prefs, rng, episode_score, resumed, bar)
        try:
            yield session
        finally:
            bar.close()
            venv.close()
            if store is not None:
                store.close()

    # -- what train() calls -------------------------------------------------------------------------------
    @property
    def chunk(self) -> int:
        """Env steps of RL between label rounds: `update_every` (default a 30th of the budget), in whole rollouts."""
        rollout = (self.agent_cfg.n_steps or 1) * self.wrapper.num_envs
        every = self.cfg.update_every or self.cfg.steps // 30
        return max(rollout, math.ceil(every / rollout) * rollout)

    def learn(self, steps: int) -> None:
        self.agent.learn(steps, reset_num_timesteps=False, callback=_Progress(self.bar))

    def collect_random(self, steps: int) -> None:
        """Act uniformly at random for `steps` env steps (all copies together), recording clips."""
        space, w = self.wrapper.action_space, self.wrapper
        space.seed(int(self.rng.integers(2**31)))
        w.reset()
        for _ in range(math.ceil(steps / w.num_envs)):
            w.step(np.stack([space.sample() for _ in range(w.num_envs)]))
        self.bar.update(steps)

    def eval_due(self, before: int) -> bool:
        """Whether the chunk that started at env step `before` crossed a multiple of `eval_every`."""
        every = self.cfg.eval_every
        return every > 0 and self.wrapper.env_step // every > before // every

    def score(self) -> float:
        """The deterministic policy's mean true return (or task score) over fresh evaluation episodes."""
        return evaluate_agent(self.agent, self.outer, self.cfg.env_id, self.cfg.eval_episodes,
                              seed=self.cfg.seed + 10_000, score=self.episode_score)

    def checkpoint(self) -> None:
        checkpoint.save(self.run, self.agent, self.outer, self.model,
                        self.prefs.trainer if self.prefs is not None else None, self.wrapper.env_step)

    def elapsed(self) -> float:
        return time.time() - self.t_start

    def labels(self) -> int:
        return self.prefs.labels() if self.prefs is not None else 0

    def log(self, eval_return: float = math.nan) -> None:
        """One row of metrics.csv (and TensorBoard): where the run stands now."""
        recent = list(self.wrapper.episode_returns)[-10:]
        s = self.stats
        row = {
            "env_steps": self.wrapper.env_step,
            "wall_s": round(time.time() - self.t_start, 1),
            "labels": self.labels(),
            "true_return": float(np.mean([t for t, _ in recent])) if recent else math.nan,
            "predicted_return": float(np.mean([p for _, p in recent])) if recent and self.model else math.nan,
            "rm_val_accuracy": s.val_accuracy if s else math.nan,
            "rm_val_loss": s.val_loss if s else math.nan,
            "rm_l2": s.l2 if s else math.nan,
            "eval_return": eval_return,
        }
        self.run.append_metrics(row)
        for k, v in row.items():
            self.agent.logger.record(f"prefrl/{k}", v)
        self.agent.logger.dump(self.wrapper.env_step)


def _check_teacher(cfg: TrainConfig, render_modes: list[str], has_reward: bool, step_score: object) -> None:
    human = cfg.teacher == "human"
    if not has_reward and step_score is None and not human:
        raise PrefrlError(f"env '{cfg.env}' has no reward for its task, so a synthetic teacher has nothing to "
                          "judge by: pass --teacher-score package.module:function, or --teacher human")
    if human and "rgb_array" not in render_modes:
        raise PrefrlError(f"env '{cfg.env}' cannot render rgb_array frames, so a person cannot see its clips: "
                          "add 'rgb_array' to its metadata['render_modes'] and render(), or use a synthetic --teacher")


def _check_store_clips(store: PreferenceStore, cfg: TrainConfig) -> None:
    """Clips already in the store (imported, or from before a resume) must be as long as this run's."""
    lengths = store.clip_lengths()
    if lengths and lengths != {cfg.queries.clip_length}:
        raise PrefrlError(f"the store {store.path} holds clips of {sorted(lengths)} steps, this run cuts clips of "
                          f"{cfg.queries.clip_length}: pass --queries.clip-length {min(lengths)}, or use a new --out")


def _agent(cfg: TrainConfig, agent_cfg: AgentConfig, run: RunDir,
           wrapper: RewardVecEnvWrapper) -> tuple[VecEnv, PPO]:
    """Build the agent (behind VecNormalize when its config says so), or load both from the run's checkpoint."""
    if cfg.resume and checkpoint.has_agent(run):
        agent, loaded = checkpoint.load_agent(run, wrapper, device=policy_device(agent_cfg, cfg.device))
        return loaded, agent
    outer: VecEnv = VecNormalize(wrapper, gamma=agent_cfg.gamma or 0.99) if agent_cfg.normalize else wrapper
    return outer, make_agent(agent_cfg, outer, cfg.seed, cfg.device)


class _Progress(BaseCallback):
    def __init__(self, bar: tqdm) -> None:
        super().__init__()
        self.bar = bar

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True
