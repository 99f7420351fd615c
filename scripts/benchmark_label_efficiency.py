"""Label-efficiency benchmark: true-reward PPO vs preference-trained PPO, same settings, side by side.

    python scripts/benchmark_label_efficiency.py --envs Hopper-v5 HalfCheetah-v5 Walker2d-v5 \
        --seeds 0 1 2 --steps 1000000 --arms true oracle-700 oracle-350 mistake-700

writes docs/benchmarks.md (a table per run appended under its own heading) and docs/benchmarks.json.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tyro

from prefrl.benchmark import markdown, plot_curves, results_from_runs, run_benchmark, summarise


@dataclass(frozen=True)
class Args:
    envs: list[str] = field(default_factory=lambda: ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = 1_000_000
    """Env steps per run (both arms)."""
    arms: list[str] = field(default_factory=lambda: ["true", "oracle-700", "oracle-350", "mistake-700"])
    """'true', or TEACHER-LABELS[-SELECTION]."""
    epsilon: float = 0.1
    """Flip probability of the mistake teacher."""
    evaluations: int = 10
    """Times each run scores its agent along the way (eval_return in its metrics.csv; see --from-runs)."""
    workers: int = os.cpu_count() or 1
    """Parallel runs (one core each)."""
    out: Path = Path("runs/benchmark")
    docs: Path = Path("docs")
    title: str = "Label efficiency"
    results: list[Path] = field(default_factory=list)
    """Only write the report, from these results.jsonl files of earlier runs (nothing is trained)."""
    from_runs: Path | None = None
    """Only write the report, from the run directories under this root (finished or not) at --at-steps."""
    at_steps: int = 0
    """With --from-runs: the budget to report (each run's evaluation at or just past it)."""
    only_arms: list[str] = field(default_factory=list)
    """With --from-runs or --curves: report only these arms (default: every arm found)."""
    curves: Path | None = None
    """Also plot evaluation return over steps per env and arm from the run directories (--out or --from-runs)."""


def main() -> None:
    args = tyro.cli(Args)
    if args.from_runs is not None:
        at = args.at_steps or args.steps
        rows = results_from_runs(args.from_runs, at, args.only_arms)
        summary = summarise(rows, at, wall_s=max((r["wall_s"] for r in rows), default=0))
    elif args.results:
        rows = [json.loads(line) for f in args.results for line in f.read_text().splitlines() if line.strip()]
        summary = summarise(rows, args.steps, wall_s=sum(r["wall_s"] for r in rows) / max(1, args.workers))
    else:
        summary = run_benchmark(args.envs, args.seeds, args.arms, args.steps, args.workers, args.out, args.epsilon,
                                args.evaluations)
    if args.curves is not None:
        plot_curves(args.from_runs or args.out, args.curves, args.only_arms)
    command = "python scripts/benchmark_label_efficiency.py " + " ".join(sys.argv[1:])
    args.docs.mkdir(parents=True, exist_ok=True)
    (args.docs / "benchmarks.json").write_text(json.dumps(summary, indent=2))
    text = f"## {args.title}\n\n" + markdown(summary, command)
    with (args.docs / "benchmarks.md").open("a") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
