"""A run's report: learning curves (true return, predicted return, labels) as report.png."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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


def write_report(run: RunDir, title: str) -> None:
    plot_runs({run.path.name: run.read_metrics()}, run.path / "report.png", title)
