"""What fitting the reward model beside the agent buys on one core and on two (issue 30).

    nice python scripts/benchmark_fit_cores.py --out runs/fit-cores --rows docs/benchmark-results-fit-cores-cpu.jsonl

For each core count (the process pinned to the first N cores with sched_setaffinity), four runs of the same env,
seed and budget, one after another and each alone on the machine: PPO on the true reward, the learned reward with
fits on a thread beside PPO (the default), in a process of their own (`-process`), and with every fit blocking the
agent (`-sync`). The learned arms' wall
time over the true arm's, per core count, is what fitting off the agent's path buys. Runs are the benchmark's
(`prefrl/interfaces/benchmark.py`), so a rerun skips finished ones; rows carry `cores` beside the benchmark's keys.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tyro

from prefrl.errors import PrefrlError, exit_status
from prefrl.interfaces.benchmark import Job, make_jobs, run_jobs
from prefrl.interfaces.doc_tables import CostTable
from prefrl.interfaces.rows import append_rows


@dataclass(frozen=True)
class Args:
    out: Path = Path("runs/fit-cores")
    """Root of the run directories (CORESc/ENV/ARM/seedN)."""
    rows: Path | None = None
    """Append one row a run to this JSONL file as each finishes."""
    env: str = "Hopper-v5"
    steps: int = 300_000
    labels: int = 700
    seed: int = 0
    cores: tuple[int, ...] = (1, 2)
    """Core counts to pin each run to (the first N cores)."""


def run_pinned(job: Job, cores: int) -> dict[str, Any]:
    """One job in a fresh process pinned to the first `cores` cores (it inherits this process's affinity, set for
    the while); its row, with `cores` added."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(sorted(allowed)[:cores]))
    try:
        (row,) = run_jobs([job], workers=1)
    finally:
        os.sched_setaffinity(0, allowed)
    return {**row, "cores": cores}


def main(args: Args) -> None:
    available = len(os.sched_getaffinity(0))
    if max(args.cores) > available:
        raise PrefrlError(f"--cores {max(args.cores)}: this process may use {available} cores; ask for at most that")
    batch = time.strftime("%Y%m%d-%H%M%S")
    arms = ["true", f"oracle-{args.labels}", f"oracle-{args.labels}-process", f"oracle-{args.labels}-sync"]
    rows = []
    for cores in args.cores:
        for job in make_jobs([args.env], [args.seed], arms, args.steps, args.out / f"{cores}c", evaluations=0,
                             batch=batch):
            row = run_pinned(replace(job, batch=f"{batch}-{cores}c"), cores)
            rows.append(row)
            if args.rows is not None:
                append_rows(args.rows, [row])
            print(f"{cores} core(s) {job.arm:>16}: {row['wall_s']:7.0f} s, return {row['final_true_return']:.0f}",
                  flush=True)
    print("\n" + CostTable.table(rows), end="")  # a batch a core count, as in the docs' `fit-cores` table


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args, description=__doc__))))
