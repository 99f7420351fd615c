"""Label-efficiency benchmark: PPO on the true reward and on learned rewards, same settings, side by side.

An arm is "true" or "TEACHER-LABELS[-SELECTION]", e.g. "oracle-700", "mistake-700", "oracle-350-disagreement".
Each (env, seed, arm) is one `prefrl train` run in its own process; finished runs are skipped when the
benchmark is started again, so an interrupted benchmark resumes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

import numpy as np

from prefrl.config import QueryConfig, SelectionKind, TeacherConfig, TeacherKind, TrainConfig
from prefrl.errors import PrefrlError
from prefrl.run_dir import RunDir


@dataclass(frozen=True)
class Job:
    env: str
    seed: int
    arm: str
    cfg: TrainConfig


def arm_config(base: TrainConfig, arm: str) -> TrainConfig:
    if arm == "true":
        return replace(base, reward="true")
    parts = arm.split("-")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise PrefrlError(f"arm '{arm}' is not 'true' or TEACHER-LABELS[-SELECTION] (e.g. oracle-700)")
    teacher, labels = parts[0], int(parts[1])
    if teacher not in get_args(TeacherKind) or (len(parts) == 3 and parts[2] not in get_args(SelectionKind)):
        raise PrefrlError(f"arm '{arm}': teachers are {get_args(TeacherKind)}, selections {get_args(SelectionKind)}")
    queries = replace(base.queries, selection=parts[2]) if len(parts) == 3 else base.queries  # type: ignore[arg-type]
    return replace(base, reward="learned", teacher=teacher, labels=labels, queries=queries)  # type: ignore[arg-type]


def make_jobs(envs: list[str], seeds: list[int], arms: list[str], steps: int, root: Path,
              teacher_params: TeacherConfig | None = None, evaluations: int = 10) -> list[Job]:
    """One job per (env, seed, arm); each also scores its agent `evaluations` times along the way."""
    teacher_params = teacher_params or TeacherConfig()
    jobs = []
    for env in envs:
        for seed in seeds:
            for arm in arms:
                base = TrainConfig(env=env, steps=steps, seed=seed, progress=False, video_steps=0, eval_episodes=10,
                                   eval_every=steps // evaluations if evaluations else 0,
                                   teacher_params=teacher_params, queries=QueryConfig(),
                                   out=root / env.replace("/", "_") / arm / f"seed{seed}")
                jobs.append(Job(env, seed, arm, arm_config(base, arm)))
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
    return {"env": job.env, "seed": job.seed, "arm": job.arm, **summary,
            "late_return": late_return(run, summary["env_steps"])}


def run_jobs(jobs: list[Job], workers: int, log_path: Path) -> list[dict[str, Any]]:
    """Run jobs in parallel processes (one core each); every finished result is appended to `log_path`."""
    results = []
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, maxtasksperchild=1) as pool, log_path.open("a") as log:
        for res in pool.imap_unordered(_run, jobs):
            results.append(res)
            log.write(json.dumps(res) + "\n")
            log.flush()
    return results


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


LATE_EVALS = 3
"""Evaluations averaged for a run's late return."""


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


def iqm(x: list[float]) -> float:
    """Interquartile mean: the mean of the middle half (all of it for fewer than 4 values)."""
    v = np.sort(np.asarray(x, dtype=float))
    k = len(v) // 4
    return float(v[k: len(v) - k].mean())


def summarise(results: list[dict[str, Any]], steps: int, wall_s: float) -> dict[str, Any]:
    table: dict[str, dict[str, Any]] = {}
    for env in sorted({r["env"] for r in results}):
        rows = [r for r in results if r["env"] == env]
        true = [r["final_true_return"] for r in rows if r["arm"] == "true"]
        true_late = late_mean([r for r in rows if r["arm"] == "true"])
        arms = {}
        for arm in sorted(dict.fromkeys(r["arm"] for r in rows), key=lambda a: a != "true"):  # true first
            vals = [r["final_true_return"] for r in rows if r["arm"] == arm]
            mean = float(np.mean(vals))
            late = late_mean([r for r in rows if r["arm"] == arm])
            arms[arm] = {"mean": mean, "iqm": iqm(vals), "returns": vals, "seeds": len(vals),
                         "labels": float(np.mean([r["labels"] for r in rows if r["arm"] == arm])),
                         "wall_s": float(np.mean([r["wall_s"] for r in rows if r["arm"] == arm])),
                         "ratio_to_true": mean / float(np.mean(true)) if true and np.mean(true) > 0 else None,
                         "late_mean": late,
                         "late_ratio_to_true": late / true_late if late is not None and true_late else None}
        table[env] = arms
    return {"steps": steps, "wall_s": round(wall_s), "machine": machine(), "envs": table}


def late_mean(rows: list[dict[str, Any]]) -> float | None:
    """The mean late return (see `late_return`) over runs, or None where a run has none (results logged
    before it was kept)."""
    late = [r.get("late_return", np.nan) for r in rows]
    return float(np.mean(late)) if late and not np.isnan(late).any() else None


def machine() -> str:
    import os

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, Python {platform.python_version()}"


def markdown(summary: dict[str, Any], command: str) -> str:
    lines = [f"Budget: {summary['steps']:,} env steps per run; machine: {summary['machine']}; "
             f"total wall time {summary['wall_s'] / 60:.0f} min.", "", f"Command: `{command}`", "",
             "| env | arm | seeds | labels | mean return | per seed | IQM return | RLHF / true reward | "
             f"mean of last {LATE_EVALS} evaluations | RLHF / true, last {LATE_EVALS} | wall s / run |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def number(v: float | None, fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    for env, arms in summary["envs"].items():
        for arm, a in arms.items():
            vs_true = arm != "true"
            ratio = number(a["ratio_to_true"] if vs_true else None, ".2f")
            late_ratio = number(a.get("late_ratio_to_true") if vs_true else None, ".2f")
            per_seed = ", ".join(f"{v:.0f}" for v in a["returns"])
            lines.append(f"| {env} | {arm} | {a['seeds']} | {a['labels']:.0f} | {a['mean']:.0f} | {per_seed} | "
                         f"{a['iqm']:.0f} | "
                         f"{ratio} | {number(a.get('late_mean'), '.0f')} | {late_ratio} | {a['wall_s']:.0f} |")
    return "\n".join(lines) + "\n"


def run_benchmark(envs: list[str], seeds: list[int], arms: list[str], steps: int, workers: int, root: Path,
                  epsilon: float = 0.1, evaluations: int = 10) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    jobs = make_jobs(envs, seeds, arms, steps, root, TeacherConfig(epsilon=epsilon), evaluations)
    t0 = time.time()
    results = run_jobs(jobs, workers, root / "results.jsonl")
    return summarise(results, steps, time.time() - t0)
