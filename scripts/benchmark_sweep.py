"""The same small jobs through the old process pool (`prefrl.interfaces.benchmark.run_jobs`) and through
`prefrl sweep` on local Ray, side by side in one run (alternating, so both see the same machine load); appends one
raw row per (runner, round) to --rows.

    python scripts/benchmark_sweep.py --seeds 4 --steps 4096 --rounds 2
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from prefrl.config import TeacherConfig
from prefrl.errors import exit_status
from prefrl.interfaces.benchmark import machine, make_jobs, run_jobs
from prefrl.interfaces.sweep import SweepArgs, run_sweep


@dataclass(frozen=True)
class Args:
    env: str = "prefrl/PointReach-v0"
    seeds: int = 4
    arms: str = "true,oracle-20"
    steps: int = 4096
    workers: int = 2
    """Pool processes; Ray is started with as many CPUs."""
    rounds: int = 2
    rows: Path = Path("docs/benchmark-results-store.jsonl")


def main(args: Args) -> None:
    import ray

    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    arms = args.arms.split(",")
    n = args.seeds * len(arms)
    for r in range(args.rounds):
        for runner in ("pool", "ray"):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                if runner == "pool":
                    jobs = make_jobs([args.env], list(range(args.seeds)), arms, args.steps, Path(tmp),
                                     TeacherConfig(), evaluations=0)
                    run_jobs(jobs, args.workers)
                else:
                    run_sweep(SweepArgs(envs=args.env, seeds=args.seeds, arms=args.arms, steps=args.steps,
                                        out=Path(tmp), evaluations=0))
                wall = time.perf_counter() - t0
            row = {"benchmark": "sweep", "runner": runner, "round": r, "jobs": n, "steps": args.steps,
                   "workers": args.workers, "wall_s": round(wall, 2), "jobs_per_min": round(60 * n / wall, 2),
                   "load_avg_1m": round(os.getloadavg()[0], 2), "machine": machine(),
                   "date": time.strftime("%Y-%m-%d %H:%M")}
            print(json.dumps(row), flush=True)
            with args.rows.open("a") as f:
                f.write(json.dumps(row) + "\n")
    ray.shutdown()


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args))))
