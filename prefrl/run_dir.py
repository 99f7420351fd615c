"""The run directory: config, store, checkpoints, metrics and report of one run."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym

from prefrl.config import TrainConfig
from prefrl.core.store import open_store
from prefrl.errors import PrefrlError
from prefrl.gym import atari
from prefrl.gym.environments import make_env
from prefrl.gym.render import clip_steps

DEFAULT_ENV = "HalfCheetah-v5"


@dataclasses.dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def store(self) -> Path:
        return self.path / "prefs.sqlite"

    @property
    def agent(self) -> Path:
        return self.path / "agent"

    @property
    def best(self) -> Path:
        """The agent of the run's best evaluation (prefrl.checkpoint.save_best)."""
        return self.path / "best"

    @property
    def reward_model(self) -> Path:
        return self.path / "reward_model"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def state(self) -> Path:
        return self.path / "state.json"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tb"

    def stored_config(self) -> TrainConfig | None:
        """The run's config.json (None where there is none); a file that is not one refuses with the fix."""
        if not self.config.exists():
            return None
        try:
            text = self.config.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise PrefrlError(f"cannot read {self.config} ({e}): edit or delete {self.config}") from None
        return TrainConfig.from_json(text, source=self.config)

    @classmethod
    def check(cls, cfg: TrainConfig) -> tuple[RunDir, TrainConfig]:
        """Validate a run request before anything of the run is written (an imported store is only opened);
        returns the config the run will use."""
        run = cls(Path(cfg.out))
        stored = run.stored_config()
        if stored is not None and cfg.env not in (None, stored.env):
            raise PrefrlError(f"run directory {run.path} belongs to env '{stored.env}', not '{cfg.env}': "
                              f"choose another --out, or drop --env to continue that run with --resume")
        if cfg.resume:
            if stored is None:
                raise PrefrlError(f"nothing to resume in {run.path} (no config.json): run without --resume "
                                  "to start a new run there")
            return run, dataclasses.replace(stored, resume=True, progress=cfg.progress, out=run.path)
        if stored is not None:
            raise PrefrlError(f"{run.path} already holds a run of '{stored.env}': add --resume to continue it, "
                              "or choose another --out")
        # A store with no run yet came from `prefrl import`: it names the env, and refuses another before
        # config.json is written (a refusal after it would leave the directory claimed by the wrong env).
        known = run.store.exists() or cfg.store and cfg.env
        imported = open_store(run.path, cfg.store, cfg.env).env_id if known else None
        # --reward-from is stored absolute, so the run resumes, and another run follows it, from any directory
        source = None if cfg.reward_from is None else cfg.reward_from.absolute()
        cfg = dataclasses.replace(cfg, env=cfg.env or imported or DEFAULT_ENV, out=run.path, reward_from=source)
        # An unknown env id, or keyword arguments it does not take, fail here, before anything is written.
        env = _training_env(cfg.env_id, cfg.train_env_kwargs)
        clip = cfg.queries.clip_length or clip_steps(env, cfg.person_paced, cfg.queries.clip_seconds)
        env.close()
        return run, dataclasses.replace(cfg, queries=dataclasses.replace(cfg.queries, clip_length=clip))

    @classmethod
    def prepare(cls, cfg: TrainConfig) -> tuple[RunDir, TrainConfig]:
        """Create a new run directory, or reopen one with --resume, checking it belongs to this env."""
        run, cfg = cls.check(cfg)
        if not cfg.resume:
            run.agent.mkdir(parents=True, exist_ok=True)
            run.reward_model.mkdir(exist_ok=True)
            write_atomic(run.config, cfg.to_json())
        return run, cfg

    def read_state(self) -> dict[str, Any]:
        return json.loads(self.state.read_text()) if self.state.exists() else {}

    def write_state(self, state: dict[str, Any]) -> None:
        write_atomic(self.state, json.dumps(state, indent=2))

    def append_metrics(self, row: dict[str, float]) -> None:
        """One row of metrics.csv; a run resumed from a file with other columns keeps the file's columns."""
        header = None
        if self.metrics.exists():
            with self.metrics.open(newline="") as f:
                header = next(csv.reader(f), None)
        with self.metrics.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header or list(row), extrasaction="ignore", restval="")
            if header is None:
                w.writeheader()
            w.writerow(row)

    def read_metrics(self) -> list[dict[str, float]]:
        if not self.metrics.exists():
            return []
        with self.metrics.open() as f:  # a row cut short by a killed run is skipped
            return [{k: float(v) if v not in ("", "nan") else float("nan") for k, v in r.items()}
                    for r in csv.DictReader(f) if None not in r.values() and None not in r]


def _training_env(env_id: str, kwargs: dict[str, Any]) -> gym.Env:
    """One copy of the env as the agent will train in it (`--train-env-kwargs`), or one clear error."""
    if not kwargs:
        return make_env(env_id)
    if atari.is_atari_id(env_id):
        raise PrefrlError(f"--train-env-kwargs is for envs made with gym.make or a factory, not Atari games "
                          f"({env_id}): drop it")
    try:
        return make_env(env_id, **kwargs)
    except (TypeError, ValueError) as e:
        given = " ".join(f"{k} {v}" for k, v in kwargs.items())
        raise PrefrlError(f"{env_id} cannot be made with --train-env-kwargs {given} ({e}): give only keyword "
                          "arguments its constructor takes, with valid values") from None


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
