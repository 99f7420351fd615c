"""Result rows of the benchmarks (one run a JSON line in docs/benchmark-results-*.jsonl) and the statistics and
markdown tables made from them: read and appended here, with every line checked at the edge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.core.jsonl import json_lines
from prefrl.errors import PrefrlError

LATE_EVALS = 3
"""Evaluations averaged for a run's late return."""


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
    for n, row in json_lines(path, "one result row a line"):
        if not isinstance(row, dict):
            raise PrefrlError(f"{path}:{n}: a row is a JSON object, not {type(row).__name__}")
        missing = [f for f in fields if f not in row]
        if missing:
            raise PrefrlError(f"{path}:{n}: the row has no {', '.join(missing)} (a row holds {', '.join(fields)})")
        rows.append(row)
    return rows


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    """A run's identity in a rows file. Its wall time tells the same run reported again (a rerun re-reads it from the
    run's directory) from another run of the same env, arm, seed and steps (a later batch)."""
    return row["env"], row["arm"], row["seed"], row.get("env_steps"), row.get("cores"), row.get("wall_s")


def append_rows(path: Path, rows: list[dict[str, Any]]) -> int:
    """Append the rows that `path` does not hold yet (a run's env, arm, seed, env steps, wall time and, where a
    benchmark pinned it, cores); returns how many were added. A rerun of a benchmark, which skips finished runs,
    reports them again: they are not doubled."""
    held = {_key(r) for r in read_rows(path)} if path.exists() else set()
    new = [r for r in rows if _key(r) not in held]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in new)
    return len(new)


def _ratio(v: float | None) -> str:
    return "–" if v is None else f"**{v:.2f}**" if round(v, 2) >= BAR else f"{v:.2f}"


def format_return(v: float) -> str:
    """A return as the table shows it: whole numbers, but two decimals under 10 (a backflip run's return is flips
    an episode, where one flip in three episodes, 0.33, would show as 0)."""
    return f"{v:.2f}" if abs(v) < 10 and round(v) != v else f"{v:.0f}"


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
        cells = [env, arm, str(a["seeds"]), f"{a['labels']:.0f}", format_return(a["mean"]),
                 ", ".join(format_return(v) for v in a["returns"]), format_return(a["iqm"]),
                 _ratio(a["ratio_to_true"] if vs_true else None)]
        if late:
            cells += ["–" if a["late_mean"] is None else format_return(a["late_mean"]),
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


def normalised_ratio(learned: float, true: float, random: float) -> float | None:
    """(R_learned - R_random) / (R_true - R_random): 1 where the learned arm matches the true-reward arm, 0 where it
    does no better than a uniform-random policy; None where the true arm itself does no better than random."""
    return (learned - random) / (true - random) if true - random > 1e-9 else None

