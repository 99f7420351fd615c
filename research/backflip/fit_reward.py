"""Fit a reward model on a run's store as it stood after its first N labels, and save it where `prefrl train
--reward-from` and `open_loop_flip.py --reward-from` read one.

    prefrl export runs/a --out /tmp/a.jsonl
    head -n 500 /tmp/a.jsonl > /tmp/a500.jsonl; ln -s a.clips.npz /tmp/a500.clips.npz
    prefrl import /tmp/a500.jsonl runs/a500
    python fit_reward.py runs/a500 --config-from runs/a --fits 4

`prefrl export` writes a run's labels in the order they were given, so the first N lines are what the run had
answered when it reached N labels (the 22nd round's first half of a paced run). The reward model is the one
`--config-from`'s run trained (its config.json is copied into RUN), fitted `--fits` times on every label in
RUN's store (each fit trains the run's epochs over all of them, as the run's own fits after each label round
did), with the seed of that run. It prints each fit's held-out accuracy and writes RUN/reward_model/model.pt.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch

from prefrl.checkpoint import MODEL
from prefrl.core.reward.factory import make_reward_model
from prefrl.core.reward.trainer import RewardStats, RewardTrainer
from prefrl.core.store import open_store
from prefrl.errors import PrefrlError
from prefrl.gym.environments import make_env
from prefrl.run_dir import RunDir


def fit(run: Path, config_from: Path, fits: int) -> list[RewardStats]:
    """Copy `config_from`'s config.json into `run`, fit its reward model `fits` times on every label of `run`'s
    store, save it in run/reward_model; each fit's stats."""
    origin, target = RunDir(config_from), RunDir(run)
    source = origin.stored_config()
    if source is None:
        raise PrefrlError(f"--config-from {config_from}: no config.json there: give a run directory")
    if not target.store.exists():
        raise PrefrlError(f"{run}: no prefs.sqlite: `prefrl import LABELS.jsonl {run}` first")
    shutil.copy(origin.config, target.config)
    torch.manual_seed(source.seed)
    env = make_env(source.env_id, **source.train_env_kwargs)
    model = make_reward_model(env.observation_space, env.action_space, source.reward_model)
    env.close()
    trainer = RewardTrainer(model, source.reward_model, np.random.default_rng(source.seed))
    store = open_store(run, None, source.env_id)
    stats: list[RewardStats] = []
    try:
        for _ in range(fits):
            one = trainer.fit(store)
            if one is None:
                raise PrefrlError(f"{run}: its store has no labels: import some first")
            stats.append(one)
    finally:
        store.close()
    target.reward_model.mkdir(exist_ok=True)
    model.save(target.reward_model / MODEL)
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a run directory holding the store (made by `prefrl import`)")
    ap.add_argument("--config-from", type=Path, required=True, help="the run whose reward model config to fit")
    ap.add_argument("--fits", type=int, default=4, help="fits over every label (default 4)")
    args = ap.parse_args()
    try:
        stats = fit(args.run, args.config_from, args.fits)
    except PrefrlError as e:
        ap.error(str(e))
    for k, one in enumerate(stats, 1):
        print(f"fit {k}: held-out accuracy {one.val_accuracy:.3f}, loss {one.val_loss:.3f}")
    print(f"wrote {RunDir(args.run).reward_model / MODEL}")


if __name__ == "__main__":
    main()
