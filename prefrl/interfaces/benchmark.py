"""Label-efficiency benchmark: PPO on the true reward and on learned rewards, same settings, side by side.

An arm is "true" or "TEACHER-LABELS[-SELECTION]", e.g. "oracle-700", "mistake-700", "oracle-350-disagreement".
Each (env, seed, arm) is one `prefrl train` run in its own process; finished runs are skipped when the
benchmark is started again, so an interrupted benchmark resumes. Each run's result is a row (a JSON object; see
ROW_FIELDS), kept in docs/benchmark-results-*.jsonl, and every table of docs/benchmarks.md is generated from those
rows (`update_doc_tables`, run by scripts/benchmark_tables.py).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import platform
import re
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from tqdm import tqdm

from prefrl.config import QueryConfig, SelectionKind, TeacherConfig, TeacherKind, TrainConfig
from prefrl.errors import PrefrlError
from prefrl.run_dir import RunDir


@dataclass(frozen=True)
class Job:
    env: str
    seed: int
    arm: str
    cfg: TrainConfig
    batch: str = ""
    """One id shared by the jobs started together (their wall times compare: same machine, same load)."""


def arm_config(base: TrainConfig, arm: str) -> TrainConfig:
    """The config of an arm: "true", or TEACHER-LABELS[-SELECTION][-sync] (-sync: every reward-model fit on the
    agent's path, --reward-model.no-background)."""
    if arm == "true":
        return replace(base, reward="true")
    if arm.endswith("-sync"):
        base = replace(base, reward_model=replace(base.reward_model, background=False))
        arm = arm.removesuffix("-sync")
    parts = arm.split("-")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise PrefrlError(f"arm '{arm}' is not 'true' or TEACHER-LABELS[-SELECTION] (e.g. oracle-700)")
    teacher, labels = parts[0], int(parts[1])
    if teacher not in get_args(TeacherKind) or (len(parts) == 3 and parts[2] not in get_args(SelectionKind)):
        raise PrefrlError(f"arm '{arm}': teachers are {get_args(TeacherKind)}, selections {get_args(SelectionKind)}")
    queries = replace(base.queries, selection=parts[2]) if len(parts) == 3 else base.queries  # type: ignore[arg-type]
    return replace(base, reward="learned", teacher=teacher, labels=labels, queries=queries)  # type: ignore[arg-type]


def make_jobs(envs: list[str], seeds: list[int], arms: list[str], steps: int, root: Path,
              teacher_params: TeacherConfig | None = None, evaluations: int = 10, batch: str = "") -> list[Job]:
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
    return {"env": job.env, "seed": job.seed, "arm": job.arm, **summary,
            "late_return": late_return(run, summary["env_steps"]), "batch": job.batch, "machine": machine(),
            "stage_s": {k: round(v, 1) for k, v in state.get("timers", {}).items()}}


def run_jobs(jobs: list[Job], workers: int, log_path: Path | None = None,
             progress: bool = False) -> list[dict[str, Any]]:
    """Run jobs in parallel processes (one core each, a fresh process per job) and return their results as they
    finish. Every result is also appended to `log_path` when given; with `progress`, a bar per job shows its env
    steps. A job that raises, or whose process dies, cancels the jobs not yet started and raises its error once the
    ones running have finished (each run directory keeps what it did: a rerun resumes it)."""
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


def arm_stats(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per env and arm (the true-reward arm first, then as they come): the mean, IQM and per-seed returns, seeds,
    labels, wall time a run, the late mean (see `late_return`), and both returns' ratios to the true-reward arm
    of the same env in `results` (None where there is none)."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
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
    return table


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


def run_benchmark(envs: list[str], seeds: list[int], arms: list[str], steps: int, workers: int, root: Path,
                  epsilon: float = 0.1, evaluations: int = 10) -> list[dict[str, Any]]:
    """Train every (env, seed, arm) under `root` (finished runs are skipped, cut-off ones resumed); returns one
    result row a run, as also logged to root/results.jsonl."""
    root.mkdir(parents=True, exist_ok=True)
    batch = time.strftime("%Y%m%d-%H%M%S")
    jobs = make_jobs(envs, seeds, arms, steps, root, TeacherConfig(epsilon=epsilon), evaluations, batch)
    return run_jobs(jobs, workers, root / "results.jsonl")


# ---- result rows and the tables of docs/benchmarks.md generated from them ----

ROW_FIELDS = ("env", "arm", "seed", "labels", "final_true_return", "wall_s")
"""What every result row holds (a row also has `env_steps`, and `late_return` since session 13)."""

BAR = 0.9
"""The issue's bar for RLHF / true reward; generated tables print ratios at or above it in bold."""


def read_rows(path: Path, fields: tuple[str, ...] = ROW_FIELDS,
              writer: str = "scripts/benchmark_label_efficiency.py --rows") -> list[dict[str, Any]]:
    """The result rows of a JSONL file, one run a line. A line that is not a JSON object holding `fields` raises
    PrefrlError naming the file, the line and the field; `writer` names what writes such files."""
    if not path.exists():
        raise PrefrlError(f"no result rows at {path}: give a JSONL file written by {writer}")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise PrefrlError(f"{path}:{n}: not JSON ({e.msg}): one result row a line") from None
        if not isinstance(row, dict):
            raise PrefrlError(f"{path}:{n}: a row is a JSON object, not {type(row).__name__}")
        missing = [f for f in fields if f not in row]
        if missing:
            raise PrefrlError(f"{path}:{n}: the row has no {', '.join(missing)} (a row holds {', '.join(fields)})")
        rows.append(row)
    return rows


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["env"], row["arm"], row["seed"], row.get("env_steps")


def append_rows(path: Path, rows: list[dict[str, Any]]) -> int:
    """Append the rows that `path` does not hold yet (a run's env, arm, seed and env steps); returns how many
    were added. A rerun of a benchmark, which skips finished runs, reports them again: they are not doubled."""
    held = {_key(r) for r in read_rows(path)} if path.exists() else set()
    new = [r for r in rows if _key(r) not in held]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in new)
    return len(new)


def _ratio(v: float | None) -> str:
    return "–" if v is None else f"**{v:.2f}**" if round(v, 2) >= BAR else f"{v:.2f}"


def runs_table(results: list[dict[str, Any]], arms: list[str] | None = None, envs: list[str] | None = None) -> str:
    """A markdown table with a line per env and arm (only `arms`, in that order, and `envs`, when given): seeds,
    labels, mean, per-seed and IQM return, RLHF / true reward, and, where the rows have late returns, the mean of
    the last LATE_EVALS evaluations and its ratio. Ratios are to the true-reward arm of the same env in
    `results`, shown or not."""
    stats = arm_stats(sorted(results, key=lambda r: r["seed"]))
    shown = [(env, arm, a) for env, by_arm in stats.items() if not envs or env in envs
             for arm in (arms or list(by_arm)) if (a := by_arm.get(arm)) is not None]
    late = any(a["late_mean"] is not None for _, _, a in shown)
    head = ["env", "arm", "seeds", "labels", "mean return", "per seed", "IQM return", "RLHF / true reward"]
    if late:
        head += [f"mean of last {LATE_EVALS} evaluations", f"RLHF / true, last {LATE_EVALS}"]
    lines = ["| " + " | ".join([*head, "wall s / run"]) + " |", "|" + "---|" * (len(head) + 1)]
    for env, arm, a in shown:
        vs_true = arm != "true"
        cells = [env, arm, str(a["seeds"]), f"{a['labels']:.0f}", f"{a['mean']:.0f}",
                 ", ".join(f"{v:.0f}" for v in a["returns"]), f"{a['iqm']:.0f}",
                 _ratio(a["ratio_to_true"] if vs_true else None)]
        if late:
            cells += ["–" if a["late_mean"] is None else f"{a['late_mean']:.0f}",
                      _ratio(a["late_ratio_to_true"] if vs_true else None)]
        lines.append("| " + " | ".join([*cells, f"{a['wall_s']:.0f}"]) + " |")
    return "\n".join(lines) + "\n"


def ratios_table(results: list[dict[str, Any]], arms: list[str], envs: list[str] | None = None) -> str:
    """A markdown table with a line per env and a column per arm: RLHF / true reward at the final evaluation, and
    over the last LATE_EVALS evaluations where the rows have them ("final / last")."""
    stats = arm_stats(results)
    lines = ["| env | " + " | ".join(arms) + " |", "|" + "---|" * (len(arms) + 1)]
    for env, by_arm in stats.items():
        if envs and env not in envs:
            continue
        cells = []
        for arm in arms:
            a = by_arm.get(arm)
            if a is None or a["ratio_to_true"] is None:
                cells.append("–")
            else:
                late = a["late_ratio_to_true"]
                cells.append(_ratio(a["ratio_to_true"]) + ("" if late is None else f" / {_ratio(late)}"))
        lines.append(f"| {env} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class DocTable:
    """A table of docs/benchmarks.md generated from result rows."""

    rows: tuple[str, ...]
    """Rows files, relative to the repository root."""
    arms: tuple[str, ...]
    """Arms shown, in this order."""
    kind: Literal["runs", "ratios"] = "runs"
    """runs: a line per env and arm (`runs_table`); ratios: a line per env, a column per arm (`ratios_table`)."""
    envs: tuple[str, ...] = ()
    """Envs shown (default: every env in the rows)."""

    def render(self, root: Path) -> str:
        results: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for name in self.rows:
            for row in read_rows(root / name):
                key = row["env"], row["arm"], row["seed"]
                if key in seen:
                    raise PrefrlError(f"{name}: {key} (env, arm, seed) appears twice in the rows of one table: "
                                      "keep one row a run")
                seen.add(key)
                results.append(row)
        if self.kind == "ratios":
            return ratios_table(results, list(self.arms), list(self.envs))
        return runs_table(results, list(self.arms), list(self.envs))


LLM_ROW_FIELDS = ("task", "arm", "seed", "labels", "steps", "beta", "base_score", "true_score", "learned_score",
                  "gain_ratio")
"""What a row of docs/benchmark-results-llm.jsonl (scripts/benchmark_llm.py) holds at least."""


def read_llm_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of scripts/benchmark_llm.py, one run (seed and arm) a line; a bad line raises PrefrlError."""
    return read_rows(path, LLM_ROW_FIELDS, "scripts/benchmark_llm.py")


@dataclass(frozen=True)
class CostTable(DocTable):
    """What the loop costs beside plain PPO (rows with `batch` and `stage_s`): per batch, env and arm, the mean wall
    time, its ratio to the true-reward arm of the same batch, and the seconds of the stages the loop adds (reward
    inference, reward-model fitting on the agent's path and beside it, asking and answering)."""

    def render(self, root: Path) -> str:
        rows = [r for name in self.rows for r in read_rows(root / name) if "stage_s" in r]
        lines = ["| batch | env | arm | steps | labels | wall s | learned / true wall | return | reward inference s | "
                 "fit on path s | fit beside s | store s | policy update s | env s |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault((r.get("batch", ""), r["env"], r["arm"]), []).append(r)
        for (batch, env, arm), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "true",
                                                                              kv[0][2])):
            wall = float(np.mean([r["wall_s"] for r in runs]))
            true = groups.get((batch, env, "true"))
            ratio = "–" if arm == "true" or not true else f"{wall / np.mean([r['wall_s'] for r in true]):.2f}"

            def stage(name: str, runs: list[dict[str, Any]] = runs) -> str:
                return f"{np.mean([r['stage_s'].get(name, 0.0) for r in runs]):.0f}"

            labels = np.mean([r["labels"] for r in runs])
            lines.append(f"| {batch} | {env} | {arm} | {runs[0]['env_steps']:,} | {labels:.0f}"
                         f" | {wall:.0f} | {ratio} | {np.mean([r['final_true_return'] for r in runs]):.0f} | "
                         f"{stage('reward_inference')} | {stage('reward_fit')} | {stage('reward_fit_background')} | "
                         f"{stage('store')} | {stage('policy_update')} | {stage('env')} |")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class LlmTable(DocTable):
    """The LLM adapter's gain ratios (rows of scripts/benchmark_llm.py): per setting (task, RL steps, beta, label
    budget), a line per seed with the scores of the SFT model (base), the true-score arm, the learned arm and the
    control arm (random labels), and the gain ratios with their mean."""

    arms: tuple[str, ...] = ("learned", "shuffled")
    """The learned arm, then the control arm."""

    def render(self, root: Path) -> str:
        groups: dict[tuple[Any, ...], dict[tuple[str, int], dict[str, Any]]] = {}
        for name in self.rows:
            for row in read_llm_rows(root / name):
                setting = row["task"], row["steps"], row["beta"], row.get("budget", row["labels"])
                runs = groups.setdefault(setting, {})
                if (row["arm"], row["seed"]) in runs:
                    raise PrefrlError(f"{name}: {setting + (row['arm'], row['seed'])} (task, steps, beta, budget, "
                                      "arm, seed) appears twice: keep one row a run")
                runs[row["arm"], row["seed"]] = row
        learned_arm, control_arm = self.arms
        blocks = []
        for (task, steps, beta, budget), runs in sorted(groups.items(), key=lambda kv: str(kv[0])):
            lines = [f"*{task} task: {steps} RL steps in every arm, beta {beta}, at most {budget} labels*", "",
                     "| seed | base (SFT) | true-score arm | learned arm | labels | gain ratio | control arm | "
                     "control ratio |", "|---|---|---|---|---|---|---|---|"]
            ratios: dict[str, list[float]] = {learned_arm: [], control_arm: []}
            for seed in sorted({seed for _, seed in runs}):
                learned, control = runs.get((learned_arm, seed)), runs.get((control_arm, seed))
                first = learned or control
                assert first is not None
                cells = [str(seed), f"{first['base_score']:.3f}", f"{first['true_score']:.3f}"]
                for arm, r in ((learned_arm, learned), (control_arm, control)):
                    if r is not None:
                        ratios[arm].append(float(r["gain_ratio"]))
                    score = "" if r is None else f"{r['learned_score']:.3f}"
                    ratio = "" if r is None else f"{r['gain_ratio']:.2f}"
                    labels = [] if arm != learned_arm else ["" if r is None else str(r["labels"])]
                    cells += [score, *labels, ratio]
                lines.append("| " + " | ".join(cells) + " |")
            mean = {arm: f"**{np.mean(v):.2f}**" if v else "–" for arm, v in ratios.items()}
            lines.append(f"| mean | | | | | {mean[learned_arm]} | | {mean[control_arm]} |")
            blocks.append("\n".join(lines) + "\n")
        return "\n".join(blocks)


_1M = "docs/benchmark-results-1m-cpu.jsonl"
_SOONER = "docs/benchmark-results-1m-sooner-cpu.jsonl"
_150K = ("docs/benchmark-results-halfcheetah.jsonl", "docs/benchmark-results-hopper-walker.jsonl",
         "docs/benchmark-results-selection.jsonl")

DOC_TABLES = {
    "ratios-1m": DocTable((_1M, _SOONER), ("oracle-700", "oracle-350", "mistake-700", "oracle-700-decay0.02"),
                          kind="ratios"),
    "results-1m": DocTable((_1M,), ("true", "oracle-700")),
    "sooner-1m": DocTable((_1M, _SOONER), ("oracle-700", "oracle-700-decay0.02"), envs=("Hopper-v5", "Walker2d-v5")),
    "arms-1m": DocTable((_1M,), ("oracle-350", "mistake-700")),
    "results-500k": DocTable(("docs/benchmark-results-500k-gpu.jsonl",), ("true", "oracle-700")),
    "results-150k": DocTable(_150K, ("true", "oracle-700", "oracle-350", "mistake-700", "oracle-700-disagreement")),
    "llm-letters": LlmTable(("docs/benchmark-results-llm.jsonl",)),
    "cost-300k": CostTable(("docs/benchmark-results-cost-cpu.jsonl",), ()),
}
"""Every generated table of docs/benchmarks.md, by the NAME of its `<!-- table: NAME ... -->` marker."""

_TABLE = re.compile(r"^<!-- table: (?P<name>[\w.-]+)(?: [^\n]*)? -->\n.*?^<!-- /table -->\n", re.S | re.M)


def update_doc_tables(doc: Path, root: Path, check: bool = False,
                      tables: dict[str, DocTable] | None = None) -> list[str]:
    """Regenerate the tables of `doc` from their rows (paths relative to `root`): what lies between each
    `<!-- table: NAME (...) -->` line and the next `<!-- /table -->` line is replaced by table NAME of `tables`
    (default DOC_TABLES), and the prose around them is kept. Returns the names of the tables that were out of
    date; with `check` the doc is only compared, not written."""
    tables = DOC_TABLES if tables is None else tables
    text = doc.read_text()
    found = [m.group("name") for m in _TABLE.finditer(text)]
    if len(re.findall(r"^<!-- table: ", text, re.M)) != len(found):
        raise PrefrlError(f"{doc}: a `<!-- table: NAME ... -->` marker without its `<!-- /table -->` line")
    unknown, missing = set(found) - set(tables), set(tables) - set(found)
    if unknown or missing:
        raise PrefrlError(f"{doc}: tables {sorted(unknown)} are not among the generated ones and "
                          f"{sorted(missing)} have no marker: the markers and DOC_TABLES "
                          "(prefrl/interfaces/benchmark.py) must name the same tables")
    stale: list[str] = []

    def generate(m: re.Match[str]) -> str:
        name = m.group("name")
        spec = tables[name]
        block = (f"<!-- table: {name} (generated by scripts/benchmark_tables.py from {', '.join(spec.rows)}) -->\n"
                 f"{spec.render(root)}<!-- /table -->\n")
        if block != m.group(0):
            stale.append(name)
        return block

    new = _TABLE.sub(generate, text)
    if stale and not check:
        doc.write_text(new)
    return stale
