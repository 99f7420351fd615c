"""The `prefrl` command. Each subcommand's flags are generated from a config dataclass."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from prefrl.config import TrainConfig
from prefrl.errors import PrefrlError
from prefrl.interfaces.sweep import SweepArgs  # imports ray only when a sweep runs
from prefrl.interfaces.web.cli import COMMANDS as WEB_COMMANDS  # its handlers import fastapi lazily


@dataclass(frozen=True)
class ExportArgs:
    """Write a run's labels as JSON Lines (plus the clips as .clips.npz beside it)."""

    run_dir: Annotated[Path, tyro.conf.Positional]
    """Run directory (holding prefs.sqlite)."""
    out: Path | None = None
    """Output .jsonl (default: RUN_DIR/labels.jsonl)."""
    format: Literal["prefrl", "preference"] = "prefrl"
    """prefrl: labels and clips, for `prefrl import`; preference: TRL's {"prompt", "chosen", "rejected"} JSON Lines
    (text runs of `prefrl llm train` only; no clips file)."""
    store: str | None = None
    """The run's store: a postgresql://user@host/db URL (the run named by RUN_DIR's name, or ?run=NAME). Default:
    RUN_DIR/prefs.sqlite (or the --store the run was trained with)."""


@dataclass(frozen=True)
class ImportArgs:
    """Add exported labels (FILE.jsonl and FILE.clips.npz) to a run's store."""

    file: Annotated[Path, tyro.conf.Positional]
    """The .jsonl written by `prefrl export`."""
    run_dir: Annotated[Path, tyro.conf.Positional]
    """Run directory to add them to (created if new: the env is taken from the file)."""
    format: Literal["prefrl", "preference"] = "prefrl"
    """prefrl: a file written by `prefrl export`; preference: TRL's {"prompt", "chosen", "rejected"} JSON Lines,
    added as text clips (chosen preferred) to a text run."""
    store: str | None = None
    """The run's store: a postgresql://user@host/db URL (the run named by RUN_DIR's name, or ?run=NAME). Default:
    RUN_DIR/prefs.sqlite (or the --store the run was trained with)."""


@dataclass(frozen=True)
class LabelArgs:
    """Open the comparison window on a run's store (running or finished), as one labeler."""

    run_dir: Annotated[Path, tyro.conf.Positional]
    labeler: str | None = None
    """Name stored with your labels (default: your login name). Several people can label one run at once."""
    mode: Literal["compare", "rate", "rank"] = "compare"
    """compare two clips, rate one clip at a time (1-5), or rank k clips (text: k completions of one prompt) from
    best to worst, stored as their k(k-1)/2 comparisons."""
    ahead: int = 3
    """Pairs claimed and drawn ahead of you."""
    k: int = 4
    """Clips ranked at once with --mode rank (2-9)."""
    store: str | None = None
    """The run's store: a postgresql://user@host/db URL (the run named by RUN_DIR's name, or ?run=NAME). Default:
    RUN_DIR/prefs.sqlite (or the --store the run was trained with)."""


@dataclass(frozen=True)
class CheckEnvArgs:
    """Check an environment (API, rendering, state restore) and say what prefrl will do with it."""

    env: Annotated[str, tyro.conf.Positional]
    """A registered Gymnasium id or package.module:factory."""
    teacher_score: str | None = None
    """package.module:function scoring clips, if the env has no reward."""


@dataclass(frozen=True)
class DemoArgs:
    """Train from preferences and plain PPO on the true reward, side by side, and compare them in one report.
    Takes every `prefrl train` flag; --out is the demo's folder (the arms go to OUT/preferences and
    OUT/true_reward)."""

    run: Annotated[TrainConfig, tyro.conf.arg(name="")] = field(
        default_factory=lambda: TrainConfig(steps=200_000, out=Path("runs/demo")))


def _export(args: ExportArgs) -> None:
    from prefrl.core.dataset import export_labels
    from prefrl.core.store import open_store
    from prefrl.run_dir import RunDir

    run = RunDir(args.run_dir)
    out = args.out or run.path / "labels.jsonl"
    if args.format == "preference":
        from prefrl.llm.formats import export_preference

        n = export_preference(open_store(run.path, args.store), out)
        print(f"wrote {n} preference records (prompt, chosen, rejected) to {out}")
        return
    n = export_labels(open_store(run.path, args.store), out)
    print(f"wrote {n} labels to {out} (clips in {out.with_suffix('.clips.npz')})")


def _import(args: ImportArgs) -> None:
    from prefrl.core.dataset import import_into_run
    from prefrl.run_dir import RunDir

    file, run_dir = args.file, args.run_dir
    swapped = (file.is_dir() and (run_dir.suffix == ".jsonl" or run_dir.is_file())) or (
        run_dir.suffix == ".jsonl" and file.suffix != ".jsonl")
    if swapped:
        raise PrefrlError(f"the labels file comes first, then the run directory: swap them: "
                          f"prefrl import {run_dir} {file}")
    if run_dir.exists() and not run_dir.is_dir():
        raise PrefrlError(f"{run_dir} is a file, not a run directory: give a run directory (a new one is created) "
                          f"as the second argument: prefrl import {file} RUN_DIR")
    run = RunDir(run_dir)
    if args.store:
        return _import_into_server(args, run_dir)
    if args.format == "preference":
        from prefrl.llm.formats import import_preference_into_run

        n = import_preference_into_run(run.store, file)
        print(f"imported {n} preference records into {run.store}")
        return
    n = import_into_run(run.store, file)
    print(f"imported {n} labels into {run.store}")


def _import_into_server(args: ImportArgs, run_dir: Path) -> None:
    """`prefrl import FILE RUN --store URL`: the whole file is checked before the run (created with the file's env
    where it is new) gets anything."""
    from prefrl.core.dataset import import_labels, read_labels
    from prefrl.core.store import open_store

    if args.format == "preference":
        from prefrl.llm.formats import TEXT_ENV, PreferenceRecord, import_preference, read_jsonl

        read_jsonl(args.file, PreferenceRecord)
        n = import_preference(open_store(run_dir, args.store, TEXT_ENV), args.file)
    else:
        env_id = read_labels(args.file).env_id
        n = import_labels(open_store(run_dir, args.store, env_id), args.file)
    print(f"imported {n} records into {args.store} (run '{run_dir.resolve().name}' unless ?run= names one)")


def _train(cfg: TrainConfig) -> int:
    from prefrl.loop import train

    window = None
    if cfg.teacher == "human" and cfg.window:
        from prefrl.ui.window import label_window

        window = label_window
    result = train(cfg, window=window)
    print(f"run directory: {result.run_dir}\nenv steps: {result.env_steps}  labels: {result.labels}  "
          f"final true return: {result.final_true_return:.1f}  wall: {result.wall_s:.0f}s")
    if result.retrain is not None:
        again = result.retrain
        print(f"new agent on the final reward model, held fixed: {again.run_dir}\nenv steps: {again.env_steps}  "
              f"final true return: {again.final_true_return:.1f}  wall: {again.wall_s:.0f}s")
    return 0


def _label(args: LabelArgs) -> int:
    from prefrl.ui.window import run_label_app

    n = run_label_app(args.run_dir, args.labeler, args.mode, args.ahead, k=args.k, store_url=args.store)
    print(f"{n} answers given; every one is saved in {args.store or args.run_dir / 'prefs.sqlite'}")
    return 0


def _check_env(args: CheckEnvArgs) -> int:
    from prefrl.interfaces.check_env import check_environment

    report = check_environment(args.env, args.teacher_score)
    print(report)
    return 0 if report.usable else 1


def _demo(args: DemoArgs) -> int:
    from prefrl.interfaces.demo import run_demo

    print(run_demo(args.run))
    return 0


def _sweep(args: SweepArgs) -> int:
    from prefrl.interfaces.sweep import sweep

    return sweep(args)


@dataclass(frozen=True)
class LlmArgs:
    """Text policies through the same loop: `prefrl llm sft|train|demo` (needs `pip install 'prefrl[llm]'`;
    `prefrl llm --help` lists the commands)."""


COMMANDS: dict[str, tuple[type[Any], Callable[[Any], int | None]]] = {
    "train": (TrainConfig, _train),
    "label": (LabelArgs, _label),
    "check-env": (CheckEnvArgs, _check_env),
    "export": (ExportArgs, _export),
    "import": (ImportArgs, _import),
    "demo": (DemoArgs, _demo),
    "llm": (LlmArgs, lambda _: _llm(["--help"])),
    "sweep": (SweepArgs, _sweep),
    **WEB_COMMANDS,  # serve, labelers
}
"""Each subcommand: the dataclass its flags are generated from, and what runs it (returns the exit status)."""


def _llm(argv: list[str]) -> int:
    """`prefrl llm SUBCOMMAND ...`: the text side's commands (prefrl.llm.cli), under their own parser."""
    try:
        from prefrl.llm.cli import COMMANDS as LLM
    except ImportError as e:
        raise PrefrlError(f"the LLM adapter needs its extra ({e}): pip install 'prefrl[llm]'") from None
    args = tyro.extras.subcommand_cli_from_dict({name: spec for name, (spec, _) in LLM.items()},
                                               prog="prefrl llm", args=argv,
                                               description="Text policies: SFT, preferences, RL with a KL leash.")
    return {spec: run for spec, run in LLM.values()}[type(args)](args)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["llm"]:
            return _llm(argv[1:])
        args = tyro.extras.subcommand_cli_from_dict({name: spec for name, (spec, _) in COMMANDS.items()},
                                                   prog="prefrl", args=argv,
                                                   description="Reinforcement learning from human preferences.")
        handler = {spec: run for spec, run in COMMANDS.values()}[type(args)]
        return handler(args) or 0
    except PrefrlError as e:
        print(f"prefrl: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
