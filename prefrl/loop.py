"""The RLHF loop of Christiano et al. (2017), in one function whose stages are named.

    1. clips of the initial random policy are labelled and the reward model is fitted to them;
    2. the agent (PPO) learns on the learned reward, in chunks; after each chunk
       a. new clips are paired and asked about, as the label schedule says,
       b. the teacher answers (through the store),
       c. the reward model is updated on every label so far;
    3. the final agent is scored on the true reward, and a report and a video are written.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure as configure_logger
from stable_baselines3.common.vec_env import VecNormalize
from tqdm import tqdm

from prefrl.agent import make_agent, policy_device, resolve_agent_config, resolve_device
from prefrl.config import AgentConfig, TrainConfig
from prefrl.environments import env_has_true_reward, episode_limit, make_env, score_functions
from prefrl.errors import PrefrlError
from prefrl.report import evaluate_agent, record_video, write_report
from prefrl.reward_cnn import make_reward_model
from prefrl.reward_model import RewardEnsemble
from prefrl.reward_trainer import RewardStats, RewardTrainer
from prefrl.run_dir import RunDir
from prefrl.schedule import LabelSchedule
from prefrl.selection import make_selector
from prefrl.store import PreferenceStore
from prefrl.teachers import ScriptedTeacher, answer_pending
from prefrl.vec import make_vec_env
from prefrl.wrapper import ClipRecorder, RewardVecEnvWrapper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    env_steps: int
    labels: int
    final_true_return: float
    wall_s: float


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) one training run and write its run directory."""
    run, cfg = RunDir.prepare(cfg)
    assert cfg.env is not None
    env_id = cfg.env
    t_start = time.time()
    agent_cfg = resolve_agent_config(cfg.env, cfg.agent)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    learned = cfg.reward == "learned"
    human = cfg.teacher == "human"

    probe = make_env(cfg.env)
    step_score, episode_score = score_functions(probe, cfg.teacher_score)
    if not env_has_true_reward(probe) and step_score is None and not human:
        raise PrefrlError(f"env '{cfg.env}' has no reward for its task, so a synthetic teacher has nothing to "
                          "judge by: pass --teacher-score package.module:function, or --teacher human")
    if human and "rgb_array" not in probe.metadata.get("render_modes", []):
        raise PrefrlError(f"env '{cfg.env}' cannot render rgb_array frames, so a person cannot see its clips: "
                          "add 'rgb_array' to its metadata['render_modes'] and render(), or use a synthetic --teacher")
    horizon = episode_limit(probe)
    venv = make_vec_env(cfg.env, agent_cfg.n_envs or 1, cfg.seed, cfg.fixed_horizon, frames_if_needed=human,
                        probe=probe)
    probe.close()
    labelling = cfg.asks_for_labels
    model = None
    if cfg.reward_from is not None:
        model = saved_reward_model(cfg.reward_from, venv.observation_space, venv.action_space,
                                   resolve_device(cfg.device, "reward_model"))
    elif learned:
        model = make_reward_model(venv.observation_space, venv.action_space, cfg.reward_model).to(
            resolve_device(cfg.device, "reward_model"))
    recorder = ClipRecorder(venv.num_envs, cfg.queries.clip_length, cfg.queries.buffer_clips,
                            absorbing=cfg.absorbing) if labelling else None
    absorbing_reward = model.absorbing_reward if model is not None and cfg.absorbing else None
    wrapper = RewardVecEnvWrapper(venv, model.reward if model is not None else None, recorder, absorbing_reward,
                                  gamma=agent_cfg.gamma or 0.99, horizon=horizon, true_score=step_score)
    state = run.read_state()
    outer, agent = _agent(cfg, agent_cfg, run, wrapper)
    agent.set_logger(configure_logger(str(run.tensorboard), ["tensorboard"]))
    wrapper.env_step = int(state.get("env_steps", 0))

    store = PreferenceStore(run.store, env_id=cfg.env) if labelling else None
    # Queries the store held before this run began (imported labels); runs saved before this was kept had none.
    prior = int(state.get("prior_queries", 0 if "env_steps" in state or store is None else store.count_queries()))
    if "prior_queries" not in state:
        run.write_state({**state, "prior_queries": prior})  # a crash in stage 1 must not count its own asks as prior
    trainer = RewardTrainer(model, cfg.reward_model, rng) if model is not None and labelling else None
    if trainer is not None and (run.reward_model / "model.pt").exists():
        assert model is not None
        model.load(run.reward_model / "model.pt")
        trainer.load_state_dict(torch.load(run.reward_model / "trainer.pt", weights_only=False))
    teacher = None if human else ScriptedTeacher(cfg.teacher, cfg.teacher_params, rng)
    window = open_label_window(run.path, cfg.labeler) if human and cfg.window and labelling else None
    if human and hasattr(os, "nice"):
        os.nice(5)  # a person's time is the scarce one: rendering and the window get the CPU before the agent
    selector = make_selector(cfg.queries.selection, trainer.model, cfg.queries.oversample) if trainer else None
    random_steps = cfg.random_steps
    schedule = LabelSchedule(total=cfg.labels, initial=cfg.initial_labels, horizon=cfg.steps - random_steps,
                             t0=max(1.0, cfg.queries.decay * (cfg.steps - random_steps)))
    rollout = (agent_cfg.n_steps or 1) * venv.num_envs
    chunk = max(rollout, math.ceil((cfg.update_every or cfg.steps // 30) / rollout) * rollout)
    bar = tqdm(total=cfg.steps, initial=wrapper.env_step, unit="step", disable=not cfg.progress,
               desc=f"{cfg.env} ({cfg.reward} reward)")
    stats: RewardStats | None = None

    def ask_for_labels(n: int) -> None:
        assert recorder is not None and selector is not None and store is not None
        if human:  # a person answers at their own pace: keep only a few recent queries waiting
            n = min(n, cfg.queries.max_open - store.count_pending())
        clips = list(recorder.clips)
        known = store.clip_ids() if cfg.queries.reference_fraction > 0 else []
        n_ref = round(n * cfg.queries.reference_fraction) if known else 0
        pairs = selector.select(clips, n - n_ref, rng)
        for a, b in pairs:
            store.add_query(store.add_clip(clips[a]), store.add_clip(clips[b]), env_step=wrapper.env_step)
        used = {i for p in pairs for i in p}
        for i, ref in selector.select_references(clips, known, n_ref, used, rng, store.clip):
            new = store.add_clip(clips[i])
            store.add_query(*((new, ref) if rng.random() < 0.5 else (ref, new)), env_step=wrapper.env_step)
            used.add(i)
        recorder.forget(used)

    def labels_due() -> int:
        """Questions the schedule wants asked by now, less those this run has asked (imported ones are not)."""
        assert store is not None
        return schedule.due(agent.num_timesteps) - (store.count_queries() - prior)

    def update_reward_model() -> RewardStats | None:
        assert trainer is not None and model is not None and store is not None and recorder is not None
        data = trainer.data_from_store(store)
        if data is None:
            return None
        new_stats = trainer.update(data)
        if recorder.clips:
            model.fit_output_normalisation(*recorder.recent_steps())
        return new_stats

    def checkpoint() -> None:
        agent.save(run.agent / "ppo.zip")
        if isinstance(outer, VecNormalize):
            outer.save(str(run.agent / "vecnormalize.pkl"))
        if model is not None and trainer is not None:
            model.save(run.reward_model / "model.pt")
            torch.save(trainer.state_dict(), run.reward_model / "trainer.pt")
        run.write_state({"env_steps": wrapper.env_step, "agent_steps": agent.num_timesteps, "prior_queries": prior})

    def score_agent() -> float:
        """The deterministic policy's mean true return (or task score) over fresh evaluation episodes."""
        return evaluate_agent(agent, outer, env_id, cfg.eval_episodes, seed=cfg.seed + 10_000, score=episode_score)

    def log_metrics(eval_return: float = math.nan) -> None:
        recent = list(wrapper.episode_returns)[-10:]
        row = {
            "env_steps": wrapper.env_step,
            "wall_s": round(time.time() - t_start, 1),
            "labels": store.count_labels(include_skips=False) if store is not None else 0,
            "true_return": float(np.mean([t for t, _ in recent])) if recent else math.nan,
            "predicted_return": float(np.mean([p for _, p in recent])) if recent and learned else math.nan,
            "rm_val_accuracy": stats.val_accuracy if stats else math.nan,
            "rm_val_loss": stats.val_loss if stats else math.nan,
            "rm_l2": stats.l2 if stats else math.nan,
            "eval_return": eval_return,
        }
        run.append_metrics(row)
        for k, v in row.items():
            agent.logger.record(f"prefrl/{k}", v)
        agent.logger.dump(wrapper.env_step)

    # Stage 1: clips of the initial random policy, labelled before RL starts. A new run may start from a store
    # that already holds labels (`prefrl import`): the model learns from them too, and --labels counts only
    # the questions this run asks.
    if store is not None and "env_steps" not in state:
        collect_random(wrapper, random_steps, rng)
        bar.update(random_steps)
        ask_for_labels(labels_due())  # the schedule's initial share: no agent step yet
        if teacher is not None:
            answer_pending(store, teacher)
        stats = update_reward_model()
        log_metrics()
        checkpoint()

    # Stage 2: the agent learns on the learned reward; labels keep coming as scheduled.
    progress = _ProgressCallback(bar)
    while wrapper.env_step < cfg.steps:
        before = wrapper.env_step
        agent.learn(min(chunk, cfg.steps - wrapper.env_step), reset_num_timesteps=False, callback=progress)
        if store is not None:
            due = labels_due()
            if due > 0:
                ask_for_labels(due)
            if teacher is not None:
                answer_pending(store, teacher)
            stats = update_reward_model() or stats
        due_eval = cfg.eval_every > 0 and wrapper.env_step // cfg.eval_every > before // cfg.eval_every
        log_metrics(score_agent() if due_eval else math.nan)
        checkpoint()
    bar.close()

    # Stage 3: score the final agent on the true reward; write the report and the video.
    final = score_agent()
    labels = store.count_labels(include_skips=False) if store is not None else 0
    summary = {"env": cfg.env, "reward": cfg.reward, "teacher": cfg.teacher, "seed": cfg.seed,
               "env_steps": wrapper.env_step, "labels": labels, "final_true_return": final,
               "wall_s": round(time.time() - t_start, 1)}
    run.write_state({**run.read_state(), "summary": summary})
    write_report(run, title=f"{cfg.env}: {cfg.reward} reward")
    if cfg.video_steps > 0:
        try:
            record_video(agent, outer, cfg.env, run.path / "agent.mp4", cfg.video_steps, seed=cfg.seed)
        except Exception as e:  # the run is saved; a machine that cannot render only loses the video
            log.warning("no agent.mp4: rendering failed (%s). On a headless machine set MUJOCO_GL=egl "
                        "or osmesa (apt-get install libosmesa6)", e)
    venv.close()
    if window is not None and window.poll() is None:
        log.info("training finished; the labelling window stays open until you quit it")
    return TrainResult(run.path, wrapper.env_step, labels, final, summary["wall_s"])  # type: ignore[arg-type]


def _agent(cfg: TrainConfig, agent_cfg: AgentConfig, run: RunDir, wrapper: RewardVecEnvWrapper):  # type: ignore[no-untyped-def]
    """Build the agent (and VecNormalize), or load both from the run's checkpoint when resuming."""
    from stable_baselines3 import PPO

    ckpt = run.agent / "ppo.zip"
    if cfg.resume and ckpt.exists():
        outer = (VecNormalize.load(str(run.agent / "vecnormalize.pkl"), wrapper)
                 if agent_cfg.normalize else wrapper)
        agent = PPO.load(ckpt, env=outer, device=policy_device(agent_cfg, cfg.device))
        return outer, agent
    outer = VecNormalize(wrapper, gamma=agent_cfg.gamma or 0.99) if agent_cfg.normalize else wrapper
    return outer, make_agent(agent_cfg, outer, cfg.seed, cfg.device)


def saved_reward_model(source: Path, obs_space: gym.Space, act_space: gym.Space,
                       device: str | torch.device = "cpu") -> RewardEnsemble:
    """The reward model last saved by the run in `source`, for steps of an env with these spaces: for an agent
    that trains on it held fixed (--reward-from), or to inspect it."""
    saved = RunDir(source)
    stored = saved.stored_config()
    if stored is None or not (saved.reward_model / "model.pt").exists():
        raise PrefrlError(f"--reward-from {source}: no run with a reward model there (config.json and "
                          "reward_model/model.pt): give the directory of a run that learned its reward")
    model = make_reward_model(obs_space, act_space, stored.reward_model).to(device)
    try:
        model.load(saved.reward_model / "model.pt")
    except RuntimeError:  # load_state_dict: the layers' shapes differ
        raise PrefrlError(f"--reward-from {source}: its reward model was learned on '{stored.env}', whose "
                          f"observations or actions differ from this env's: train on --env {stored.env}, or "
                          "give a run of this env") from None
    if not bool(model.fitted):
        raise PrefrlError(f"--reward-from {source}: its reward model has seen no labels yet: give a run that "
                          "has answered some")
    return model


def open_label_window(run_dir: Path, labeler: str | None) -> subprocess.Popen[bytes]:
    """The comparison window, as its own process (`prefrl label RUN_DIR`): training never waits for it."""
    cmd = [sys.executable, "-m", "prefrl.cli", "label", str(run_dir)] + (["--labeler", labeler] if labeler else [])
    return subprocess.Popen(cmd)


def collect_random(wrapper: RewardVecEnvWrapper, steps: int, rng: np.random.Generator) -> None:
    """Act uniformly at random for `steps` env steps (all copies together), recording clips."""
    space = wrapper.action_space
    space.seed(int(rng.integers(2**31)))
    wrapper.reset()
    for _ in range(math.ceil(steps / wrapper.num_envs)):
        wrapper.step(np.stack([space.sample() for _ in range(wrapper.num_envs)]))


class _ProgressCallback(BaseCallback):
    def __init__(self, bar: tqdm) -> None:
        super().__init__()
        self.bar = bar

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

