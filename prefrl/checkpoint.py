"""Saving and loading what a run has learned: its agent, observation normaliser, reward model and trainer state.

One module for the loop (checkpoints and `--resume`), the CLI (`--reward-from`) and the scripts that score saved
agents. The reward model and the trainer's state load with ``torch.load(weights_only=True)``: tensors and plain
values only. The agent (SB3's zip) and the normaliser (VecNormalize's pickle) are unpickled by their libraries:
load them only from run directories you trust.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from prefrl.core.reward.factory import make_reward_model
from prefrl.core.reward.model import RewardEnsemble, RewardModel
from prefrl.core.reward.trainer import RewardTrainer
from prefrl.errors import PrefrlError
from prefrl.gym.environments import make_env
from prefrl.run_dir import RunDir

AGENT = "ppo.zip"
NORMALISER = "vecnormalize.pkl"
MODEL = "model.pt"
TRAINER = "trainer.pt"


def save(run: RunDir, agent: PPO, outer: VecEnv, reward: tuple[dict[str, Any], dict[str, Any]] | None,
         env_step: int, extra: dict[str, Any] | None = None) -> None:
    """Checkpoint the run: agent, normaliser, `reward` (the reward model's weights and its trainer's state), then
    the step count they belong to (written last, so a crash in between resumes from the previous, complete
    checkpoint's count)."""
    _atomic(run.agent / AGENT, agent.save)
    if isinstance(outer, VecNormalize):
        _atomic(run.agent / NORMALISER, lambda tmp: outer.save(str(tmp)))
    if reward is not None:
        weights, trainer_state = reward
        _atomic(run.reward_model / MODEL, lambda tmp: torch.save(weights, tmp))
        _atomic(run.reward_model / TRAINER, lambda tmp: torch.save(trainer_state, tmp))
    run.write_state({**run.read_state(), **(extra or {}), "env_steps": env_step, "agent_steps": agent.num_timesteps})


def save_best(run: RunDir, agent: PPO, outer: VecEnv, score: float, env_step: int, labels: int) -> bool:
    """Keep the agent (and its normaliser) in RUN/best when `score`, an evaluation's, beats every earlier one of the
    run; its score, step and labels go into state.json's "best". Returns whether it was kept."""
    state = run.read_state()
    best = state.get("best")
    if score != score or (best is not None and score <= best["eval_return"]):  # NaN never beats anything
        return False
    run.best.mkdir(exist_ok=True)
    _atomic(run.best / AGENT, agent.save)
    if isinstance(outer, VecNormalize):
        _atomic(run.best / NORMALISER, lambda tmp: outer.save(str(tmp)))
    run.write_state({**state, "best": {"eval_return": score, "env_steps": env_step, "labels": labels}})
    return True


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write `path` through a temporary file and a rename, so a run killed mid-write keeps its last good file."""
    tmp = path.with_name(f".tmp-{path.name}")  # same suffix: SB3 appends .zip to a name without it
    write(tmp)
    os.replace(tmp, path)


def has_agent(run: RunDir) -> bool:
    return (run.agent / AGENT).exists()


def load_agent(run: RunDir, venv: VecEnv | None = None, device: str = "cpu",
               best: bool = False) -> tuple[PPO, VecEnv]:
    """The run's saved agent acting on `venv` (default: one copy of the run's own env), behind the run's saved
    observation normaliser when it has one; with `best`, the agent of its best evaluation (`save_best`). Returns
    (agent, the VecEnv it acts through)."""
    folder = run.best if best else run.agent
    if not (folder / AGENT).exists():
        what = "was evaluated during training (--eval-every)" if best else "has trained for at least one chunk"
        raise PrefrlError(f"no saved agent in {run.path} ({folder / AGENT}): give the directory of a run that "
                          f"{what}")
    if venv is None:
        stored = run.stored_config()
        if stored is None or stored.env is None:
            raise PrefrlError(f"{run.path} has no config.json: give a run directory made by `prefrl train`")
        env_id = stored.env
        venv = DummyVecEnv([lambda: make_env(env_id)])
    norm = folder / NORMALISER
    outer = VecNormalize.load(str(norm), venv) if norm.exists() else venv
    return PPO.load(folder / AGENT, env=outer, device=device), outer


def load_reward_model(source: Path, obs_space: gym.Space, act_space: gym.Space,
                      device: str | torch.device = "cpu") -> RewardEnsemble:
    """The reward model last saved by the run in `source`, for steps of an env with these spaces: for an agent
    that trains on it held fixed (--reward-from), or to inspect it. A run that itself trained on another's model
    (--reward-from, saving none of its own) gives that model."""
    saved, seen = RunDir(source), set()
    stored = saved.stored_config()
    while stored is not None and stored.reward_from is not None and not (saved.reward_model / MODEL).exists() \
            and saved.path.absolute() not in seen:  # a chain that comes back on itself ends in the error below
        seen.add(saved.path.absolute())
        saved = RunDir(stored.reward_from)
        stored = saved.stored_config()
    if stored is None or not (saved.reward_model / MODEL).exists():
        raise PrefrlError(f"--reward-from {source}: no run with a reward model there (config.json and "
                          "reward_model/model.pt): give the directory of a run that learned its reward")
    model = make_reward_model(obs_space, act_space, stored.reward_model).to(device)
    try:
        model.load(saved.reward_model / MODEL)
    except RuntimeError:  # load_state_dict: the layers' shapes differ
        raise PrefrlError(f"--reward-from {source}: its reward model was learned on '{stored.env}', whose "
                          f"observations or actions differ from this env's: train on --env {stored.env}, or "
                          "give a run of this env") from None
    if not model.fitted:
        raise PrefrlError(f"--reward-from {source}: its reward model has seen no labels yet: give a run that "
                          "has answered some")
    return model


def restore_reward_training(run: RunDir, model: RewardModel, trainer: RewardTrainer) -> None:
    """Reload the run's reward model and its trainer's state (optimiser, L2), if the run saved them."""
    if (run.reward_model / MODEL).exists():
        model.load(run.reward_model / MODEL)
        trainer.load_state_dict(torch.load(run.reward_model / TRAINER, weights_only=True))
