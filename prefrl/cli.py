"""The `prefrl` command. Each subcommand's flags are generated from a config dataclass."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from prefrl.config import TrainConfig
from prefrl.errors import PrefrlError


@dataclass(frozen=True)
class ExportArgs:
    """Write a run's labels as JSON Lines (plus the clips as .clips.npz beside it)."""

    run_dir: Annotated[Path, tyro.conf.Positional]
    """Run directory (holding prefs.sqlite)."""
    out: Path | None = None
    """Output .jsonl (default: RUN_DIR/labels.jsonl)."""


@dataclass(frozen=True)
class ImportArgs:
    """Add exported labels (FILE.jsonl and FILE.clips.npz) to a run's store."""

    file: Annotated[Path, tyro.conf.Positional]
    """The .jsonl written by `prefrl export`."""
    run_dir: Annotated[Path, tyro.conf.Positional]
    """Run directory to add them to (created if new: the env is taken from the file)."""


@dataclass(frozen=True)
class LabelArgs:
    """Open the comparison window on a run's store (running or finished), as one labeler."""

    run_dir: Annotated[Path, tyro.conf.Positional]
    labeler: str | None = None
    """Name stored with your labels (default: your login name). Several people can label one run at once."""
    mode: Literal["compare", "rate"] = "compare"
    """compare two clips, or rate one clip at a time (1-5)."""
    ahead: int = 3
    """Pairs claimed and drawn ahead of you."""


@dataclass(frozen=True)
class CheckEnvArgs:
    """Check an environment (API, rendering, state restore) and say what prefrl will do with it."""

    env: Annotated[str, tyro.conf.Positional]
    """A registered Gymnasium id or package.module:factory."""
    teacher_score: str | None = None
    """package.module:function scoring clips, if the env has no reward."""


@dataclass(frozen=True)
class DemoArgs:
    """Train from preferences and plain PPO on the true reward, side by side, and compare them."""

    env: str = "HalfCheetah-v5"
    steps: int = 200_000
    labels: int = 700
    seed: int = 0
    out: Path = Path("runs/demo")


def _export(args: ExportArgs) -> None:
    from prefrl.dataset import export_labels
    from prefrl.run_dir import RunDir
    from prefrl.store import PreferenceStore

    run = RunDir(args.run_dir)
    out = args.out or run.path / "labels.jsonl"
    n = export_labels(PreferenceStore(run.store), out)
    print(f"wrote {n} labels to {out} (clips in {out.with_suffix('.clips.npz')})")


def _import(args: ImportArgs) -> None:
    import json

    from prefrl.dataset import import_labels
    from prefrl.run_dir import RunDir
    from prefrl.store import PreferenceStore

    run = RunDir(args.run_dir)
    env_id = None
    if not run.store.exists():
        first = args.file.read_text().splitlines()[0] if args.file.exists() else "{}"
        env_id = json.loads(first).get("env_id")
        run.path.mkdir(parents=True, exist_ok=True)
    n = import_labels(PreferenceStore(run.store, env_id=env_id), args.file)
    print(f"imported {n} labels into {run.store}")


def _train(cfg: TrainConfig) -> None:
    from prefrl.loop import train

    result = train(cfg)
    print(f"run directory: {result.run_dir}\nenv steps: {result.env_steps}  labels: {result.labels}  "
          f"final true return: {result.final_true_return:.1f}  wall: {result.wall_s:.0f}s")


def _label(args: LabelArgs) -> None:
    from prefrl.ui.app import run_label_app

    n = run_label_app(args.run_dir, args.labeler, args.mode, args.ahead)
    print(f"{n} answers given; every one is saved in {args.run_dir / 'prefs.sqlite'}")


def _check_env(args: CheckEnvArgs) -> bool:
    from prefrl.check import check_environment

    report = check_environment(args.env, args.teacher_score)
    print(report)
    return report.usable


def _demo(args: DemoArgs) -> None:
    from prefrl.demo import run_demo

    summary = run_demo(args.env, args.steps, args.labels, args.seed, args.out)
    print(summary)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cmd = tyro.extras.subcommand_cli_from_dict(
            {"train": TrainConfig, "label": LabelArgs, "check-env": CheckEnvArgs, "export": ExportArgs,
             "import": ImportArgs, "demo": DemoArgs},
            prog="prefrl", args=argv, description="Reinforcement learning from human preferences.")
        if isinstance(cmd, TrainConfig):
            _train(cmd)
        elif isinstance(cmd, ExportArgs):
            _export(cmd)
        elif isinstance(cmd, ImportArgs):
            _import(cmd)
        elif isinstance(cmd, DemoArgs):
            _demo(cmd)
        elif isinstance(cmd, LabelArgs):
            _label(cmd)
        elif isinstance(cmd, CheckEnvArgs) and not _check_env(cmd):
            return 1
    except PrefrlError as e:
        print(f"prefrl: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
