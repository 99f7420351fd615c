"""Label-efficiency benchmark: PPO on the true reward and on learned rewards, same settings, side by side.

An arm is "true" or "TEACHER-LABELS[-SELECTION]", e.g. "oracle-700", "mistake-700", "oracle-350-disagreement".
Each (env, seed, arm) is one `prefrl train` run in its own process; finished runs are skipped when the
benchmark is started again, so an interrupted benchmark resumes. Each run's result is a row (a JSON object; see
prefrl.interfaces.rows), kept in docs/benchmark-results-*.jsonl, and every table of docs/benchmarks.md is generated
from those rows (prefrl.interfaces.doc_tables, run by scripts/benchmark_tables.py).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import platform
import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

import numpy as np
from tqdm import tqdm

from prefrl.config import QueryConfig, SelectionKind, TeacherConfig, TeacherKind, TrainConfig
from prefrl.errors import PrefrlError
from prefrl.interfaces.rows import LATE_EVALS, append_rows, read_rows
from prefrl.run_dir import RunDir


@dataclass(frozen=True)
class Job:
    env: str
    seed: int
    arm: str
    cfg: TrainConfig
    batch: str = ""
    """One id shared by the jobs started together (their wall times compare: same machine, same load)."""


ARM_SUFFIXES: dict[str, dict[str, Any]] = {"-cap": {"absorbing_cap": True}, "-squares": {"action_squares": True},
                                           "-nosquares": {"action_squares": False},
                                           "-linsquares": {"action_squares": True, "squares_lr": 1e-2},
                                           "-allframes": {"image_steps": None},
                                           "-fitall": {"replay": None, "image_replay": None},
                                           "-sync": {"background": False}, "-process": {"process": True}}
"""Arm-name suffixes that change the run's config (a field of TrainConfig, else of its reward model), last first
(they are written in the reverse order, e.g. oracle-700-sync-fitall-allframes): -cap caps the absorbing state's
reward at the live floor (--absorbing-cap); -squares / -nosquares let the reward model read squared actions or
not, -linsquares as a linear term of their own (--reward-model.squares-lr 0.01); -fitall refits on every label
each time; -sync blocks the agent on every fit; -process fits in a process of its own instead of a thread;
-allframes reads every frame of an image clip per gradient step."""


NUMBER_SUFFIXES: tuple[tuple[str, Callable[[TrainConfig, float], TrainConfig]], ...] = (
    (r"-paced(\d*\.?\d+)s$", lambda c, v: replace(c, teacher_params=replace(c.teacher_params, seconds_per_label=v))),
    (r"-decay(\d*\.?\d+)$", lambda c, v: replace(c, queries=replace(c.queries, decay=v))),
)
"""Arm suffixes that carry a number (a pattern whose group is the number, and where it goes), outermost first."""


def arm_config(base: TrainConfig, arm: str) -> TrainConfig:
    """The config of an arm: "true", or TEACHER-LABELS[-SELECTION][-sync][-fitall][-decayT0][-pacedNs] (see
    ARM_SUFFIXES; -decay0.02 sets --queries.decay; -paced3s makes the teacher answer at a person's pace, 3 s a label,
    --teacher-params.seconds-per-label, so the run waits for its answers as it would for a person's)."""
    if arm == "true":
        return replace(base, reward="true")
    for pattern, set_value in NUMBER_SUFFIXES:  # outermost first
        found = re.search(pattern, arm)
        if found is not None:
            base = set_value(base, float(found.group(1)))
            arm = arm[:found.start()]
    for suffix, change in ARM_SUFFIXES.items():
        if arm.endswith(suffix):
            own = {k: v for k, v in change.items() if k in TrainConfig.__dataclass_fields__}
            base = replace(base, **own, reward_model=replace(base.reward_model, **{
                k: v for k, v in change.items() if k not in own}))
            arm = arm.removesuffix(suffix)
    parts = arm.split("-")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise PrefrlError(f"arm '{arm}' is not 'true' or TEACHER-LABELS[-SELECTION] (e.g. oracle-700)")
    teacher, labels = parts[0], int(parts[1])
    if teacher not in get_args(TeacherKind) or (len(parts) == 3 and parts[2] not in get_args(SelectionKind)):
        raise PrefrlError(f"arm '{arm}': teachers are {get_args(TeacherKind)}, selections {get_args(SelectionKind)}")
    queries = replace(base.queries, selection=parts[2]) if len(parts) == 3 else base.queries  # type: ignore[arg-type]
    return replace(base, reward="learned", teacher=teacher, labels=labels, queries=queries)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Suite:
    """A named set of tasks run with one command: each env with its step budget, and the arms (one default
    configuration of the preference side for every task; the agent's PPO settings are the env's preset)."""

    steps: dict[str, int]
    arms: tuple[str, ...]


SUITES = {
    # The paper's MuJoCo tasks (Christiano et al. 2017 ran 700 synthetic labels on eight such tasks).
    "mujoco": Suite({"HalfCheetah-v5": 1_000_000, "Hopper-v5": 1_000_000, "Walker2d-v5": 1_000_000,
                     "Ant-v5": 1_000_000, "Reacher-v5": 1_000_000, "InvertedPendulum-v5": 300_000},
                    ("true", "oracle-700")),
    "atari": Suite({"ALE/Pong-v5": 2_000_000, "ALE/Breakout-v5": 2_000_000}, ("true", "oracle-1000")),
}
SUITES["all"] = Suite({**SUITES["mujoco"].steps, **SUITES["atari"].steps}, ("true", "oracle-700", "oracle-1000"))


def run_path(root: Path, env: str, arm: str, seed: int) -> Path:
    """Where a benchmark keeps the run of (env, arm, seed) under its --out: ENV/ARM/seedN ("/" in ids as "_")."""
    return root / env.replace("/", "_") / arm / f"seed{seed}"


def make_jobs(envs: list[str], seeds: list[int], arms: list[str], steps: int | dict[str, int], root: Path,
              teacher_params: TeacherConfig | None = None, evaluations: int = 10, batch: str = "") -> list[Job]:
    """One job per (env, seed, arm), with `steps` for every env or per env; each also scores its agent
    `evaluations` times along the way."""
    teacher_params = teacher_params or TeacherConfig()
    jobs = []
    for env in envs:
        env_steps = steps[env] if isinstance(steps, dict) else steps
        for seed in seeds:
            for arm in arms:
                base = TrainConfig(env=env, steps=env_steps, seed=seed, progress=False, video_steps=0, eval_episodes=10,
                                   eval_every=env_steps // evaluations if evaluations else 0,
                                   teacher_params=teacher_params, queries=QueryConfig(),
                                   out=run_path(root, env, arm, seed))
                jobs.append(Job(env, seed, arm, arm_config(base, arm), batch))
    return jobs


def _run(job: Job) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from prefrl.loop import train

    run = RunDir(job.cfg.out)
    summary = run.read_state().get("summary") if run.config.exists() else None
    if summary is None:
        resume = run.config.exists()
        train(replace(job.cfg, resume=resume, env=None if resume else job.cfg.env))
        summary = run.read_state()["summary"]
    state = run.read_state()
    if "random_return" not in summary:  # a run finished before the summary held it
        summary["random_return"] = random_baseline(job.cfg)
    return {"env": job.env, "seed": job.seed, "arm": job.arm, **summary,
            "late_return": late_return(run, summary["env_steps"]), "batch": job.batch, "machine": machine(),
            "stage_s": {k: round(v, 1) for k, v in state.get("timers", {}).items()}, "wall_curve": wall_curve(run)}


def wall_curve(run: RunDir) -> list[list[float]]:
    """[env steps, wall seconds] at each row of a run's metrics.csv: where it stood when (the cost table compares
    the arms of a batch at the same steps while every run of the batch was still running)."""
    return [[int(r["env_steps"]), round(r["wall_s"], 1)] for r in run.read_metrics() if r["wall_s"] == r["wall_s"]]


def fill_rows(path: Path, key: str, compute: Callable[[dict[str, Any]], Any | None]) -> int:
    """Give every row of the rows file `path` that lacks `key` (or holds None there) `compute(row)`, unless that is
    None, and rewrite the file if any row changed; returns how many rows were filled."""
    rows = read_rows(path)
    filled = 0
    for r in rows:
        if r.get(key) is None:
            value = compute(r)
            if value is not None:
                r[key] = value
                filled += 1
    if filled:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return filled


def add_wall_curves(path: Path, root: Path) -> int:
    """Give every row of `path` without a `wall_curve` the curve of its run under `root` (ENV/ARM/seedN, as the
    benchmark lays runs out); returns how many rows were filled."""

    def curve(r: dict[str, Any]) -> list[list[float]] | None:
        run = RunDir(run_path(root, r["env"], r["arm"], r["seed"]))
        return wall_curve(run) if run.metrics.exists() else None

    return fill_rows(path, "wall_curve", curve)


def random_baseline(cfg: TrainConfig) -> float:
    """A uniform-random policy's mean return over the evaluation episodes of a run of `cfg` (the same seeds)."""
    from prefrl.gym.environments import make_env, score_functions
    from prefrl.gym.evaluation import EVAL_SEED_OFFSET, random_return

    probe = make_env(cfg.env_id)
    try:
        _, episode_score = score_functions(probe, cfg.teacher_score)
    finally:
        probe.close()
    return random_return(cfg.env_id, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET, episode_score)


def run_jobs(jobs: list[Job], workers: int, log_path: Path | None = None, progress: bool = False,
             rows_path: Path | None = None) -> list[dict[str, Any]]:
    """Run jobs in parallel processes (one core each, a fresh process per job) and return their results as they
    finish. Every result is also appended to `log_path` and to the rows file `rows_path` (`append_rows`) the moment
    its run finishes, when given; with `progress`, a bar per job shows its env steps. A job that raises, or whose
    process dies, cancels the jobs not yet started and raises its error once the ones running have finished (each
    run directory keeps what it did: a rerun resumes it)."""
    results: list[dict[str, Any]] = []
    bars = [tqdm(total=j.cfg.steps, desc=f"{j.env} {j.arm} seed {j.seed}", unit="step", position=k)
            for k, j in enumerate(jobs)] if progress else []
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as pool, \
            ExitStack() as stack:
        log = stack.enter_context(log_path.open("a")) if log_path is not None else None
        pending = {pool.submit(_run, job) for job in jobs}
        try:
            while pending:
                done, pending = wait(pending, timeout=2.0 if bars else None, return_when=FIRST_COMPLETED)
                for future in done:
                    results.append(res := future.result())
                    if log is not None:
                        log.write(json.dumps(res) + "\n")
                        log.flush()
                    if rows_path is not None:
                        append_rows(rows_path, [res])
                _show_steps(jobs, bars)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            for bar in bars:
                bar.close()
    return results


def _show_steps(jobs: list[Job], bars: list[tqdm]) -> None:
    for job, bar in zip(jobs, bars):
        try:
            rows = RunDir(job.cfg.out).read_metrics()
            steps = int(rows[-1]["env_steps"]) if rows else 0
        except (TypeError, ValueError):  # a line being written as we read
            continue
        bar.n = min(steps, bar.total)
        bar.refresh()


@dataclass(frozen=True)
class BenchmarkRun:
    """One run directory of a benchmark, laid out as ROOT/ENV/ARM/seedN (ENV with '/' as '_')."""

    run: RunDir
    env_dir: str
    arm: str
    seed: int


def benchmark_runs(root: Path, arms: list[str] | None = None) -> list[BenchmarkRun]:
    """The run directories under `root` that have logged metrics, in a stable order; only those of `arms`
    when given."""
    return [BenchmarkRun(RunDir(m.parent), m.parent.parent.parent.name, m.parent.parent.name,
                         int(m.parent.name.removeprefix("seed")))
            for m in sorted(root.glob("*/*/seed*/metrics.csv")) if not arms or m.parent.parent.name in arms]


def late_return(run: RunDir, upto: int, k: int = LATE_EVALS) -> float:
    """The mean of the run's last `k` evaluations up to env step `upto`. PPO's return swings between
    neighbouring evaluations (Walker2d at 1M: 4,570 at 811k, 3,459 at 1M for one agent), so one evaluation
    is a noisy reading of where a run ended up and the mean of the last few a steadier one."""
    evals = [r["eval_return"] for r in run.read_metrics()
             if r["env_steps"] <= upto and not np.isnan(r.get("eval_return", np.nan))]
    return float(np.mean(evals[-k:])) if evals else float("nan")


def results_from_runs(root: Path, at_steps: int, arms: list[str] | None = None) -> list[dict[str, Any]]:
    """Results at `at_steps` env steps from the run directories under `root` (ENV/ARM/seedN), finished or not:
    a run finished at that budget gives its final score, others their first evaluation at or past it.
    Runs that have not reached it, or not of `arms` when given, are left out."""
    rows = []
    for b in benchmark_runs(root, arms):
        run, arm, seed = b.run, b.arm, b.seed
        summary = run.read_state().get("summary")
        env = json.loads(run.config.read_text())["env"]
        if summary is not None and abs(summary["env_steps"] - at_steps) < at_steps // 20:
            rows.append({"env": env, "seed": seed, "arm": arm, **summary,
                         "late_return": late_return(run, summary["env_steps"])})
            continue
        due = [r for r in run.read_metrics()
               if r["env_steps"] >= at_steps and not np.isnan(r.get("eval_return", np.nan))]
        if due:
            r = due[0]
            rows.append({"env": env, "seed": seed, "arm": arm, "env_steps": int(r["env_steps"]),
                         "labels": int(r["labels"]), "final_true_return": r["eval_return"], "wall_s": r["wall_s"],
                         "late_return": late_return(run, int(r["env_steps"]))})
    return rows


def plot_curves(root: Path, path: Path, arms: list[str] | None = None) -> None:
    """Evaluation return over env steps, one panel per env, one line per arm (mean over seeds, range shaded);
    only `arms` when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, dict[str, list[list[tuple[float, float]]]]] = {}
    for b in benchmark_runs(root, arms):
        rows = [r for r in b.run.read_metrics() if not np.isnan(r.get("eval_return", np.nan))]
        curve = [(r["env_steps"], r["eval_return"]) for r in rows]
        curves.setdefault(b.env_dir, {}).setdefault(b.arm, []).append(curve)
    fig, axes = plt.subplots(1, max(1, len(curves)), figsize=(5 * max(1, len(curves)), 3.6), squeeze=False)
    for ax, (env, by_arm) in zip(axes[0], curves.items()):
        for arm, runs in by_arm.items():
            n = min(len(r) for r in runs)
            if n == 0:
                continue
            x = np.mean([[s for s, _ in r[:n]] for r in runs], axis=0)
            y = np.array([[v for _, v in r[:n]] for r in runs])
            ax.plot(x, y.mean(0), marker="o", label=f"{arm} ({len(runs)} seeds)")
            ax.fill_between(x, y.min(0), y.max(0), alpha=0.15)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_formatter(lambda v, _: f"{v / 1000:.0f}k")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def machine() -> str:
    import os

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, Python {platform.python_version()}"


def run_benchmark(envs: list[str], seeds: list[int], arms: list[str], steps: int | dict[str, int], workers: int,
                  root: Path, epsilon: float = 0.1, evaluations: int = 10,
                  rows_path: Path | None = None) -> list[dict[str, Any]]:
    """Train every (env, seed, arm) under `root` (finished runs are skipped, cut-off ones resumed); returns one
    result row a run, as also logged to root/results.jsonl and `rows_path` as each run finishes."""
    root.mkdir(parents=True, exist_ok=True)
    batch = time.strftime("%Y%m%d-%H%M%S")
    jobs = make_jobs(envs, seeds, arms, steps, root, TeacherConfig(epsilon=epsilon), evaluations, batch)
    return run_jobs(jobs, workers, root / "results.jsonl", rows_path=rows_path)


def add_random_returns(path: Path) -> int:
    """Give every row of `path` without a `random_return` the uniform-random policy's return over the same
    evaluation episodes as its run (10, seeds seed + 10,000 on); returns how many rows were filled."""
    cache: dict[tuple[str, int], float] = {}

    def baseline(r: dict[str, Any]) -> float:
        key = r["env"], int(r["seed"])
        if key not in cache:
            cache[key] = random_baseline(TrainConfig(env=r["env"], seed=int(r["seed"]), eval_episodes=10))
        return cache[key]

    return fill_rows(path, "random_return", baseline)

