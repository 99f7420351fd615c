"""The parts of one training run, built from its config (or reloaded from its run directory), for `train()`.

A `Session` holds the env behind the reward wrapper, the agent, the label machinery (`Preferences`, when the
reward is learned) and the run's metrics; it checkpoints, scores and closes them. `prefrl.loop.train` drives it.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure as configure_logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv
from tqdm import tqdm

from prefrl import checkpoint
from prefrl.config import AgentConfig, TrainConfig
from prefrl.core.data import Clip
from prefrl.core.labels import FINAL, Preferences
from prefrl.core.reward.background import BackgroundFitter, ProcessFitter
from prefrl.core.reward.factory import make_reward_model
from prefrl.core.reward.model import RewardModel
from prefrl.core.reward.trainer import RewardStats, RewardTrainer
from prefrl.core.schedule import LabelSchedule
from prefrl.core.selection import make_selector
from prefrl.core.store import Store, open_store
from prefrl.core.teachers import PacedTeacher, ScriptedTeacher
from prefrl.core.timing import Timers
from prefrl.errors import PrefrlError
from prefrl.gym.agent import make_agent, policy_device, preset_id, resolve_agent_config, resolve_device
from prefrl.gym.environments import env_has_true_reward, episode_limit, make_env, score_functions
from prefrl.gym.evaluation import EVAL_SEED_OFFSET, evaluate_agent, random_return
from prefrl.gym.vec import make_vec_env
from prefrl.gym.wrapper import ClipRecorder, RewardVecEnvWrapper, RolloutRewardNormalize, RolloutRewards
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
    timers: Timers = field(default_factory=Timers)
    t_start: float = field(default_factory=time.time)
    stats: RewardStats | None = None
    stand_in: PacedTeacher | None = None
    """The scripted teacher answering at a person's pace, when it is the run's teacher (its thread is checked while
    the run waits for it)."""

    # -- building -------------------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def open(cls, cfg: TrainConfig, run: RunDir) -> Iterator[Session]:
        """Build the run's parts (or reload them from its checkpoint); closes the env and store on exit."""
        env_id = cfg.env_id
        rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        torch.set_num_threads(cfg.threads)
        human = cfg.teacher == "human" and cfg.reward_from is None  # a run on a model held fixed asks nobody

        probe = make_env(env_id)
        agent_cfg = resolve_agent_config(preset_id(env_id, probe), cfg.agent)
        step_score, episode_score = score_functions(probe, cfg.teacher_score)
        if cfg.reward_from is None:
            _check_teacher(cfg, probe.metadata.get("render_modes", []), env_has_true_reward(probe), step_score)
        horizon = episode_limit(probe)
        venv = make_vec_env(env_id, agent_cfg.n_envs or 1, cfg.seed, cfg.fixed_horizon, frames_if_needed=human,
                            probe=probe, env_kwargs=cfg.train_env_kwargs)
        probe.close()
        device = resolve_device(cfg.device, "reward_model")
        model: RewardModel | None = None
        if cfg.reward_from is not None:
            model = checkpoint.load_reward_model(cfg.reward_from, venv.observation_space, venv.action_space, device)
        elif cfg.reward == "learned":
            model = make_reward_model(venv.observation_space, venv.action_space, cfg.reward_model).to(device)
        recorder = ClipRecorder(venv.num_envs, cfg.clip_steps, cfg.queries.buffer_clips,
                                absorbing=cfg.absorbing) if cfg.asks_for_labels else None
        absorbing = (functools.partial(received_absorbing, model, cfg.absorbing_cap)
                     if model is not None and cfg.absorbing else None)
        wrapper = RewardVecEnvWrapper(venv, model.reward if model is not None else None, recorder, absorbing,
                                      gamma=agent_cfg.gamma or 0.99, horizon=horizon, true_score=step_score)
        state = run.read_state()
        resumed = "env_steps" in state
        timers = Timers(state.get("timers"))  # a resumed run adds to its totals
        wrapper.timers = timers
        outer, agent = _agent(cfg, agent_cfg, run, wrapper)
        agent.set_logger(configure_logger(str(run.tensorboard), ["tensorboard"]))
        wrapper.env_step = int(state.get("env_steps", 0))
        store = open_store(run.path, cfg.store, env_id) if recorder is not None else None
        prefs = None
        if store is not None and recorder is not None and model is not None:
            _check_store_clips(store, cfg)
            # In the background, the trainer fits a copy (with its own random stream: it runs on another thread);
            # the agent's reward and pair selection read `model`, which takes the copy's weights between rollouts.
            background = cfg.reward_model.background
            fitted = copy.deepcopy(model) if background else model
            trainer_rng = np.random.default_rng([cfg.seed, 1]) if background else rng
            trainer = RewardTrainer(fitted, cfg.reward_model, trainer_rng)
            checkpoint.restore_reward_training(run, fitted, trainer)
            if background:
                model.load_state_dict(fitted.state_dict())  # type: ignore[attr-defined]
            # Every question is asked by the last label round, before the final chunk of RL, so none goes unused
            # (a budget of one chunk asks all of them up front).
            random_steps = math.ceil(cfg.random_steps / venv.num_envs) * venv.num_envs
            horizon_steps = cfg.steps - random_steps - _chunk(cfg, agent_cfg, venv.num_envs)
            initial = cfg.initial_labels if horizon_steps > 0 else cfg.labels
            prefs = Preferences(
                store=store, trainer=trainer, source=recorder, rng=rng,
                schedule=LabelSchedule(total=cfg.labels, initial=initial, horizon=max(1, horizon_steps),
                                       t0=max(1.0, cfg.queries.decay * max(1, horizon_steps))),
                selector=make_selector(cfg.queries.selection, model, cfg.queries.oversample),
                teacher=None if cfg.person_paced else ScriptedTeacher(cfg.teacher, cfg.teacher_params, rng),
                max_open=cfg.queries.max_open if cfg.person_paced else None,
                reference_fraction=cfg.queries.reference_fraction,
                background=_fitter(cfg, run, model, trainer, timers) if background else None, timers=timers)
        if prefs is not None and cfg.person_paced:
            prefs.reset_person()  # a choice made in an earlier session of this run (go on without me, stop) lapses
        stand_in = None
        if prefs is not None and cfg.person_paced and not human:  # a scripted teacher at a person's pace
            scripted = ScriptedTeacher(cfg.teacher, cfg.teacher_params, np.random.default_rng([cfg.seed, 2]))
            stand_in = PacedTeacher(lambda: open_store(run.path, cfg.store), scripted,
                                    cfg.teacher_params.seconds_per_label)
            stand_in.start()
        if human and hasattr(os, "nice"):  # a person's time is the scarce one: rendering and the window get the CPU
            os.nice(max(0, 5 - os.nice(0)))  # first (niceness 5, once per process: runs in one process don't add up)
        bar = tqdm(total=cfg.steps, initial=wrapper.env_step, unit="step", disable=not cfg.progress,
                   desc=f"{env_id} ({cfg.reward} reward)")
        session = cls(cfg, run, agent_cfg, wrapper, outer, agent, model, prefs, rng, episode_score, resumed, bar,
                      timers, time.time() - float(state.get("wall_s", 0.0)), stand_in=stand_in)
        try:
            yield session
        finally:
            if stand_in is not None:
                stand_in.stop()
            bar.close()
            venv.close()
            if prefs is not None and prefs.background is not None:
                prefs.background.close()
            if store is not None:
                store.close()

    # -- what train() calls -------------------------------------------------------------------------------
    @property
    def chunk(self) -> int:
        return _chunk(self.cfg, self.agent_cfg, self.wrapper.num_envs)

    def label_round(self, last: bool = False) -> None:
        """Ask what the schedule wants by now (in the last round, the rest of the budget), let the teacher answer,
        refit. With a person and --wait-for-labels, then wait until at most --queries.max-behind questions are due
        or open (none in the last round and before RL starts), and refit on the answers."""
        prefs = self.prefs
        if prefs is None:
            return
        step, env_step = FINAL if last else self.agent.num_timesteps, self.wrapper.env_step
        behind = 0 if last or step == 0 else self.cfg.queries.max_behind
        if prefs.person_left():
            return  # "go on without me": nobody will answer; the reward stays as the labels so far made it
        # before RL starts and before the final chunk the fit is waited for; between chunks it runs beside PPO
        self.stats = prefs.round(step, env_step, wait=last or step == 0) or self.stats
        check = self.stand_in.check if self.stand_in is not None else None
        if self.cfg.waits_for_person and prefs.wait_for_person(step, env_step, behind, on_wait=self._waiting,
                                                               check=check):
            self.stats = prefs.refit(wait=last or step == 0) or self.stats

    def stop_requested(self) -> bool:
        """The person chose "stop the run" in the window."""
        return self.prefs is not None and self.prefs.person_choice() == "stop"

    def _waiting(self, answered: int, need: int) -> None:
        self.bar.set_description_str(f"waiting for your labels: {answered} of {need}")
        log.info("waiting for your labels: %d of %d", answered, need)

    def learn(self, steps: int) -> None:
        """PPO on the current reward for `steps` env steps. Its time is split into the policy's update and, within
        the rollouts, env stepping, reward inference and clip recording (timed by the wrapper) and the rest:
        the policy's inference and SB3's bookkeeping."""
        inside = ("env", "reward_inference", "clip_recording")
        before = sum(self.timers.seconds[k] for k in inside)
        fitter = self.prefs.background if self.prefs is not None else None
        progress = _Progress(self.bar, fitter.swap if fitter is not None else None,
                             RolloutRewards(self.wrapper, self.outer, per_step=self.cfg.reward_per_step))
        start = time.perf_counter()
        self.agent.learn(steps, reset_num_timesteps=False, callback=progress)
        total = time.perf_counter() - start
        self.timers.add("policy_update", total - progress.rollout_s)
        self.timers.add("policy_inference", progress.rollout_s - (sum(self.timers.seconds[k] for k in inside) - before))

    def collect_random(self, steps: int) -> None:
        """Act uniformly at random for `steps` env steps (all copies together), recording clips; longer if that
        many steps gave too few clips for the initial questions (episodes shorter than a clip's multiple lose
        their tail), up to 10 times as long."""
        space, w = self.wrapper.action_space, self.wrapper
        space.seed(int(self.rng.integers(2**31)))
        w.reset()
        w.timers = None  # the random policy's steps are one stage of their own
        start = time.perf_counter()
        want = 2 * (self.prefs.due(0) if self.prefs is not None else 0) + 2
        recorder = w.recorder
        for k in range(10 * math.ceil(steps / w.num_envs)):
            if k >= math.ceil(steps / w.num_envs) and (recorder is None or len(recorder.clips) >= want):
                break
            w.step(np.stack([space.sample() for _ in range(w.num_envs)]))
        self.bar.update(w.env_step - self.bar.n)
        self.timers.add("random_policy", time.perf_counter() - start)
        w.timers = self.timers

    def eval_due(self, before: int) -> bool:
        """Whether the chunk that started at env step `before` crossed a multiple of `eval_every`."""
        every = self.cfg.eval_every
        return every > 0 and self.wrapper.env_step // every > before // every

    def score(self) -> float:
        """The deterministic policy's mean true return (or task score) over fresh evaluation episodes."""
        with self.timers("evaluation"):
            return evaluate_agent(self.agent, self.outer, self.cfg.env_id, self.cfg.eval_episodes,
                                  seed=self.cfg.seed + EVAL_SEED_OFFSET, score=self.episode_score)

    def keep_if_best(self, score: float) -> None:
        """Keep the agent in RUN/best when `score` (an evaluation of it) is the run's best so far."""
        with self.timers("checkpoint"):
            checkpoint.save_best(self.run, self.agent, self.outer, score, self.wrapper.env_step, self.labels())

    def random_score(self) -> float:
        """What a uniform-random policy scores over the same evaluation episodes as `score` (the baseline of
        normalised ratios)."""
        with self.timers("evaluation"):
            return random_return(self.cfg.env_id, self.cfg.eval_episodes, seed=self.cfg.seed + EVAL_SEED_OFFSET,
                                 score=self.episode_score)

    def absorbing_reward(self, learned: bool = False) -> float:
        """What the agent receives for a step of the absorbing state after a termination (with `learned`: the
        learned reward, before `--absorbing-cap`), on the agent's scale (zero mean, unit std over recent steps):
        below 0, ending an episode costs the agent what living would have earned."""
        if self.model is None or not self.cfg.absorbing:
            return math.nan
        return self.model.absorbing_reward() if learned else received_absorbing(self.model, self.cfg.absorbing_cap)

    def live_floor(self) -> float:
        """The 1st percentile of the live steps' learned rewards over recent behaviour (agent's scale): what
        `--absorbing-cap` caps the absorbing state's reward at."""
        return self.model.live_floor() if self.model is not None and self.cfg.absorbing else math.nan

    def checkpoint(self) -> None:
        """Save what the run has learned, with its step count, stage timers and wall time (see prefrl.checkpoint)."""
        with self.timers("checkpoint"):
            checkpoint.save(self.run, self.agent, self.outer, self._reward_state(), self.wrapper.env_step,
                            extra={"timers": self.timers.seconds, "wall_s": round(self.elapsed(), 1)})

    def _reward_state(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(model weights, trainer state) to checkpoint: a background fit's last completed one, not one mid-fit."""
        prefs = self.prefs
        if prefs is None:
            return None
        if prefs.background is not None:
            return prefs.background.saved_state()
        return prefs.trainer.model.state_dict(), prefs.trainer.state_dict()  # type: ignore[attr-defined]

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
            "rm_fit_steps": s.steps if s else math.nan,
            "absorbing_reward": self.absorbing_reward(),
            "eval_return": eval_return,
            **self.timers.columns(),
        }
        self.run.append_metrics(row)
        for k, v in row.items():
            self.agent.logger.record(f"prefrl/{k}", v)
        self.agent.logger.dump(self.wrapper.env_step)


def received_absorbing(model: RewardModel, capped: bool) -> float:
    """The reward the agent receives for an absorbing step: the learned one, capped at the live floor if `capped`."""
    learned = model.absorbing_reward()
    return min(learned, model.live_floor()) if capped else learned


def _chunk(cfg: TrainConfig, agent_cfg: AgentConfig, n_envs: int) -> int:
    """Env steps of RL between label rounds: `update_every` (default a 30th of the budget), in whole rollouts."""
    rollout = (agent_cfg.n_steps or 1) * n_envs
    every = cfg.update_every or cfg.steps // 30
    return max(rollout, math.ceil(every / rollout) * rollout)


def _fitter(cfg: TrainConfig, run: RunDir, live: RewardModel, trainer: RewardTrainer,
            timers: Timers) -> BackgroundFitter:
    """What fits the reward model beside the agent: a thread, or with --reward-model.process a process of its own
    (which opens the run's store itself)."""
    if cfg.reward_model.process:
        return ProcessFitter(live, trainer, functools.partial(open_store, run.path, cfg.store), timers, cfg.threads)
    return BackgroundFitter(live, trainer, timers)


def _check_teacher(cfg: TrainConfig, render_modes: list[str], has_reward: bool, step_score: object) -> None:
    human = cfg.teacher == "human"
    if not has_reward and step_score is None and not human:
        raise PrefrlError(f"env '{cfg.env}' has no reward for its task, so a synthetic teacher has nothing to "
                          "judge by: pass --teacher-score package.module:function, or --teacher human")
    if human and "rgb_array" not in render_modes:
        raise PrefrlError(f"env '{cfg.env}' cannot render rgb_array frames, so a person cannot see its clips: "
                          "add 'rgb_array' to its metadata['render_modes'] and render(), or use a synthetic --teacher")


def _check_store_clips(store: Store, cfg: TrainConfig) -> None:
    """Clips already in the store (imported, or from before a resume) must be as long as this run's."""
    lengths = store.clip_lengths()
    if lengths and lengths != {cfg.clip_steps}:
        raise PrefrlError(f"the store {store.path} holds clips of {sorted(lengths)} steps, this run cuts clips of "
                          f"{cfg.clip_steps}: pass --queries.clip-length {min(lengths)}, or use a new --out")


def _agent(cfg: TrainConfig, agent_cfg: AgentConfig, run: RunDir,
           wrapper: RewardVecEnvWrapper) -> tuple[VecEnv, PPO]:
    """Build the agent (behind VecNormalize when its config says so), or load both from the run's checkpoint."""
    if cfg.resume and checkpoint.has_agent(run):
        agent, loaded = checkpoint.load_agent(run, wrapper, device=policy_device(agent_cfg, cfg.device))
        return loaded, agent
    outer: VecEnv = (RolloutRewardNormalize(wrapper, gamma=agent_cfg.gamma or 0.99) if agent_cfg.normalize
                     else wrapper)
    return outer, make_agent(agent_cfg, outer, cfg.seed, cfg.device)


class _Progress(BaseCallback):
    """Moves the progress bar, and times PPO's rollouts (the rest of `learn` is the policy's update)."""

    def __init__(self, bar: tqdm, between_rollouts: Callable[[], object] | None = None,
                 rewards: RolloutRewards | None = None) -> None:
        super().__init__()
        self.bar = bar
        self.between_rollouts = between_rollouts
        self.rewards = rewards
        self.rollout_s = 0.0
        self._start = 0.0

    def _on_rollout_start(self) -> None:
        if self.between_rollouts is not None:  # the agent takes a finished background fit's weights here
            self.between_rollouts()
        if self.rewards is not None:  # the weights stay as they are until the next rollout starts
            self.rewards.begin()
        self._start = time.perf_counter()

    def _on_rollout_end(self) -> None:
        if self.rewards is not None:  # the rollout's learned rewards, into PPO's buffer before its update
            assert isinstance(self.model, OnPolicyAlgorithm)
            self.rewards.finish(self.model.rollout_buffer, self.locals["values"], self.locals["dones"])
        self.rollout_s += time.perf_counter() - self._start

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True
