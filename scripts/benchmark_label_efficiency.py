r"""Label-efficiency benchmark: true-reward PPO vs preference-trained PPO, same settings, side by side.

    python scripts/benchmark_label_efficiency.py --envs HalfCheetah-v5 Hopper-v5 Walker2d-v5 \
        --seeds 0 1 2 --steps 1000000 --arms true oracle-700 oracle-350 mistake-700 \
        --rows docs/benchmark-results-1m.jsonl
    python scripts/benchmark_label_efficiency.py --suite mujoco --seeds 0 1 2 --rows docs/benchmark-results-suite.jsonl

Trains every (env, seed, arm) under --out (a rerun skips finished runs and resumes cut-off ones), or, with
--from-runs, reads the runs already there at --at-steps. Prints a table of the results. With --rows it appends
one result row a run to that JSONL file and regenerates the tables of docs/benchmarks.md
(scripts/benchmark_tables.py); a new rows file gets a table once DOC_TABLES in prefrl/interfaces/doc_tables.py and
a marker in docs/benchmarks.md name it.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import tyro

from prefrl.config import TeacherConfig
from prefrl.errors import PrefrlError, exit_status
from prefrl.interfaces.benchmark import SUITES, make_jobs, plot_curves, results_from_runs, run_benchmark
from prefrl.interfaces.doc_tables import DOC_TABLES, update_doc_tables
from prefrl.interfaces.rows import append_rows, runs_table
from prefrl.interfaces.sweep import run_on_ray

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Args:
    suite: Literal["mujoco", "atari", "all"] | None = None
    """Run a named suite (prefrl/interfaces/benchmark.py SUITES): its envs, each at its own step budget, and its
    arms (unless --arms is given); --envs then picks among the suite's envs."""
    envs: list[str] = field(default_factory=list)
    """Env ids to train on (default: the suite's, else HalfCheetah-v5 Hopper-v5 Walker2d-v5)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Seeds; every arm runs with each."""
    steps: int = 1_000_000
    """Env steps per run (both arms); a suite gives each env its own."""
    arms: list[str] = field(default_factory=list)
    """'true', or TEACHER-LABELS[-SELECTION] (default: the suite's, else true oracle-700 oracle-350 mistake-700)."""
    epsilon: float = 0.1
    """Flip probability of the mistake teacher."""
    evaluations: int = 10
    """Times each run scores its agent along the way (eval_return in its metrics.csv; see --from-runs)."""
    workers: int = os.cpu_count() or 1
    """Parallel runs (one core each)."""
    out: Path = Path("runs/benchmark")
    """Root of the run directories (ENV/ARM/seedN)."""
    rows: Path | None = None
    """Append one result row a run to this JSONL file (e.g. docs/benchmark-results-NAME.jsonl) as each run finishes,
    then, at the end, regenerate the tables of docs/benchmarks.md."""
    from_runs: Path | None = None
    """Train nothing: read the run directories under this root (finished or not) at --at-steps."""
    at_steps: int = 0
    """With --from-runs: the budget to report (each run's evaluation at or just past it; default --steps)."""
    only_arms: list[str] = field(default_factory=list)
    """With --from-runs or --curves: only these arms (default: every arm found)."""
    runner: Literal["pool", "ray"] = "pool"
    """pool: a local process per run (--workers at once); ray: each run a Ray task (this machine's cores, or the
    cluster of RAY_ADDRESS), as `prefrl sweep` runs them; finished runs in OUT/results.jsonl are skipped."""
    curves: Path | None = None
    """Also plot evaluation return over steps per env and arm from the run directories (--out or --from-runs)."""


def plan(args: Args) -> tuple[list[str], list[str], int | dict[str, int]]:
    """(envs, arms, steps for every env or per env) from --suite, --envs, --arms and --steps."""
    if args.suite is None:
        return (args.envs or ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"],
                args.arms or ["true", "oracle-700", "oracle-350", "mistake-700"], args.steps)
    suite = SUITES[args.suite]
    unknown = [e for e in args.envs if e not in suite.steps]
    if unknown:
        raise PrefrlError(f"--envs {' '.join(unknown)}: not in suite '{args.suite}' ({', '.join(suite.steps)}): "
                          "pick among those, or leave out --suite")
    return args.envs or list(suite.steps), args.arms or list(suite.arms), suite.steps


def main(args: Args) -> None:
    envs, arms, steps = plan(args)
    if args.from_runs is not None:
        rows = results_from_runs(args.from_runs, args.at_steps or args.steps, args.only_arms)
    elif args.runner == "ray":
        jobs = make_jobs(envs, args.seeds, arms, steps, args.out, TeacherConfig(epsilon=args.epsilon),
                         args.evaluations, batch=time.strftime("%Y%m%d-%H%M%S"))
        rows = run_on_ray(jobs, args.out)
    else:
        rows = run_benchmark(envs, args.seeds, arms, steps, args.workers, args.out, args.epsilon, args.evaluations,
                             rows_path=args.rows)
    print(runs_table(rows), end="")
    if args.curves is not None:
        plot_curves(args.from_runs or args.out, args.curves, args.only_arms)
    if args.rows is not None:
        added = append_rows(args.rows, rows)
        print(f"{added} new rows in {args.rows} ({len(rows) - added} already there)")
        stale = update_doc_tables(DOC, ROOT)
        print(f"{DOC}: regenerated {', '.join(stale) or 'nothing'}")
        if not any(args.rows.resolve() == (ROOT / f).resolve() for t in DOC_TABLES.values() for f in t.rows):
            print(f"no table of {DOC} reads {args.rows} yet: add it to DOC_TABLES (prefrl/interfaces/doc_tables.py) "
                  "and a marker to the document, then run scripts/benchmark_tables.py")


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args, description=__doc__))))
