"""A run's report: learning curves as report.png; the summary, the labellers' pace and agreement as report.md."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from prefrl.core.store import Store  # noqa: E402
from prefrl.core.timing import STAGES  # noqa: E402
from prefrl.run_dir import RunDir  # noqa: E402


def plot_runs(runs: dict[str, list[dict[str, float]]], path: Path, title: str) -> None:
    """report.png: true return, predicted return and labels over env steps, one line per run."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, rows in runs.items():
        if not rows:
            continue
        x = [r["env_steps"] for r in rows]
        axes[0].plot(x, [r["true_return"] for r in rows], label=name)
        if any(np.isfinite(r["predicted_return"]) for r in rows):
            axes[1].plot(x, [r["predicted_return"] for r in rows], label=name)
            axes[2].plot(x, [r["labels"] for r in rows], label=name)
    titles = ["true return (mean of last episodes)", "predicted return (learned reward, re-normalised each update)",
              "labels used"]
    for ax, t in zip(axes, titles):
        ax.set_title(t)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(run: RunDir, title: str, store: Store | None = None) -> None:
    """report.png (learning curves) and report.md (the run's summary; with a store, each labeller's pace and the
    agreement of queries answered twice)."""
    plot_runs({run.path.name: run.read_metrics()}, run.path / "report.png", title)
    summary = run.read_state().get("summary", {})
    nan = float("nan")
    lines = [f"# {title}", "", "| env steps | labels | final true return | uniform-random policy's return | wall s |",
             "|---|---|---|---|---|",
             f"| {summary.get('env_steps', '–')} | {summary.get('labels', '–')} | "
             f"{summary.get('final_true_return', nan):.1f} | {summary.get('random_return', nan):.1f} | "
             f"{summary.get('wall_s', '–')} |", ""]
    best = summary.get("best")
    if best:
        lines += [f"The best evaluation, {best['eval_return']:.1f}, came at {best['env_steps']} env steps and "
                  f"{best['labels']} labels; that agent is kept in best/ (`load_agent(run, best=True)`).", ""]
    again = summary.get("retrain")
    if again:
        kept = again.get("best")
        where = (f"; its best evaluation, {kept['eval_return']:.1f}, came at {kept['env_steps']} env steps "
                 f"({again['run_dir']}/best)" if kept else "")
        lines += [f"Then a new agent trained {again['env_steps']} env steps from scratch on the final reward model, "
                  f"held fixed, in {again['run_dir']}/ (--retrain-steps): final true return "
                  f"{again['final_true_return']:.1f}{where}. Its report: {again['run_dir']}/report.md.", ""]
    absorbing = summary.get("absorbing_reward")
    if absorbing is not None and absorbing == absorbing:  # not NaN: a learned reward with the absorbing state
        verdict = "costs" if absorbing < 0 else "does not cost"
        learned = summary.get("absorbing_learned", absorbing)
        capped = (f", capped at {absorbing:+.2f} (the 1st percentile of live steps' rewards; --absorbing-cap)"
                  if learned > absorbing else "")
        floor = summary.get("live_floor", math.nan)
        low = f", 1st percentile {floor:+.2f}" if math.isfinite(floor) else ""
        lines += [f"The learned reward of the absorbing state after a termination is {learned:+.2f} (live steps: "
                  f"mean 0, std 1{low} over recent behaviour){capped}: ending an episode {verdict} the agent.", ""]
    lines += ["![learning curves](report.png)", ""]
    lines += timing_lines(run.read_state())
    if store is not None:
        lines += labeller_lines(store)
    (run.path / "report.md").write_text("\n".join(lines) + "\n")


def timing_lines(state: dict[str, Any]) -> list[str]:
    """Markdown: seconds per stage of the loop (prefrl.core.timing), and each one's share of the run's wall time."""
    seconds, wall = state.get("timers"), float(state.get("wall_s") or state.get("summary", {}).get("wall_s") or 0)
    if not seconds or wall <= 0:
        return []
    out = ["## Where the time went", "", f"Wall time {wall:.0f} s.", "", "| stage | seconds | share of wall |",
           "|---|---|---|"]
    for stage, what in STAGES.items():
        if seconds.get(stage, 0) > 0:
            out.append(f"| {what} | {seconds[stage]:.1f} | {seconds[stage] / wall:.0%} |")
    return out + [""]


def labeller_lines(store: Store) -> list[str]:
    """Markdown: per labeller, labels given, median seconds from being shown a query to answering it, and labels
    per hour at that pace; then how often two labellers of the same query agreed."""
    labels = store.labels()
    if not labels:
        return []
    times = store.answer_times()
    out = ["## Labellers", "", "| labeller | labels | median s / label | labels / hour |", "|---|---|---|---|"]
    for name in sorted({lab.labeler for lab in labels}):
        n = sum(lab.labeler == name for lab in labels)
        t = [x for x in times.get(name, []) if x >= 0]
        median = float(np.median(t)) if t else float("nan")
        pace = f"{median:.1f} | {3600 / median:.0f}" if t and median > 0 else "– | –"
        out.append(f"| {name} | {n} | {pace} |")
    checks = store.checks()
    if checks:
        agree = np.mean([a.answer == b.answer for a, b in checks])
        out += ["", f"Queries answered by two labellers: {len(checks)}; they agreed on {agree:.0%}."]
    return out + [""]
