"""`prefrl sweep`: every (env, seed, arm) run of a benchmark as a Ray task, on this machine or on a cluster.

The jobs are the label-efficiency benchmark's (`prefrl.interfaces.benchmark`: `make_jobs`, `arm_config`, and its
job runner `_run`, which resumes a run from its checkpoints); Ray only places them. Each job is a plain
`@ray.remote` task with `num_cpus=1` (and `num_gpus` when asked for). A task whose worker dies is retried
(`max_retries`) and resumes from its run directory's last checkpoint, where the retry can see that directory (the
same machine, or --out on a shared filesystem). Each finished run is one raw row appended to OUT/results.jsonl the
moment it arrives, and OUT/results.md, the generated table, is rewritten beside it; a sweep started again skips
the runs its results.jsonl already holds.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefrl.config import TeacherConfig
from prefrl.core.jsonl import json_lines
from prefrl.errors import PrefrlError

if TYPE_CHECKING:  # the benchmark module (numpy, tqdm, the run directory) loads when a sweep runs
    from prefrl.interfaces.benchmark import Job

log = logging.getLogger(__name__)
_ONE_ROW = "one finished run a line (a run cut off while writing leaves a partial last line: delete it)"


@dataclass(frozen=True)
class SweepArgs:
    """Run every (env, seed, arm) of a benchmark as a Ray task: on this machine (all its cores), or on a cluster
    with --address (or RAY_ADDRESS). Finished runs go to OUT/results.jsonl as they finish, with the table in
    OUT/results.md; started again, a sweep skips the runs it has and resumes cut-off ones."""

    envs: str = "prefrl/PointReach-v0"
    """Comma-separated env ids."""
    seeds: int = 3
    """Seeds 0..N-1 of every env and arm."""
    arms: str = "true,oracle-700"
    """Comma-separated arms: true, or TEACHER-LABELS[-SELECTION][-sync] (oracle-700, mistake-700, ...)."""
    steps: int = 300_000
    """Agent env steps of every run."""
    out: Path = Path("runs/sweep")
    """Sweep directory: a run directory per job, results.jsonl and results.md. On a cluster, put it on a
    filesystem every node mounts, so that a retried job resumes where its dead worker stopped."""
    address: str | None = None
    """Ray cluster to join (HEAD:6379, or ray://HEAD:10001). Default: RAY_ADDRESS, else Ray on this machine."""
    gpus: float = 0.0
    """GPUs each job asks Ray for (0.25: four jobs share one GPU); 0: CPU only."""
    epsilon: float = 0.1
    """Mistake rate of the `mistake` teacher."""
    evaluations: int = 10
    """Times each run scores its agent along the way (learning curves, late returns)."""
    max_retries: int = 3
    """Times a job whose worker died is started again (it resumes from its checkpoints)."""
    store: str | None = None
    """postgresql://user@host/db: every run keeps its preferences there (run named SWEEP-ENV-ARM-seedN) instead of
    its own prefs.sqlite."""


def _with_run(url: str, run: str) -> str:
    return url + ("&" if "?" in url else "?") + f"run={run}"


def sweep_jobs(args: SweepArgs) -> list[Job]:
    from prefrl.interfaces.benchmark import make_jobs

    envs = [e for e in args.envs.split(",") if e]
    arms = [a for a in args.arms.split(",") if a]
    if not envs or not arms or args.seeds < 1:
        raise PrefrlError("a sweep needs at least one env (--envs), one arm (--arms) and one seed (--seeds)")
    jobs = make_jobs(envs, list(range(args.seeds)), arms, args.steps, args.out.resolve(),
                     TeacherConfig(epsilon=args.epsilon), args.evaluations, batch=time.strftime("%Y%m%d-%H%M%S"))
    if args.store:
        name = args.out.resolve().name
        jobs = [replace(j, cfg=replace(j.cfg, store=_with_run(args.store, f"{name}-{j.env.replace('/', '_')}-"
                                                                           f"{j.arm}-seed{j.seed}")))
                for j in jobs]
    return jobs


def _done_keys(path: Path) -> set[tuple[str, str, int]]:
    if not path.exists():
        return set()
    rows = [row for _, row in json_lines(path, _ONE_ROW)]
    return {(r["env"], r["arm"], int(r["seed"])) for r in rows}


def write_table(out: Path) -> None:
    """OUT/results.md from OUT/results.jsonl."""
    from prefrl.interfaces.rows import runs_table

    rows = [row for _, row in json_lines(out / "results.jsonl", _ONE_ROW)]
    text = f"# Sweep results ({len(rows)} runs)\n\nGenerated from results.jsonl by `prefrl sweep`.\n\n"
    text += runs_table(rows) + "\n"
    tmp = out / ".results.md.tmp"
    tmp.write_text(text)
    os.replace(tmp, out / "results.md")


def _run_job(job: Job) -> dict[str, Any]:
    """One run in a Ray worker: the benchmark's runner (skips a finished run, resumes a cut-off one)."""
    from prefrl.interfaces.benchmark import _run

    return _run(job)


def run_sweep(args: SweepArgs) -> list[dict[str, Any]]:
    """Run the sweep's missing jobs on Ray; returns the rows of the runs finished now. Raises PrefrlError naming the
    runs that failed (the others still finish and are kept; a rerun retries the failed ones)."""
    return run_on_ray(sweep_jobs(args), args.out, args.address, args.gpus, args.max_retries)


def run_on_ray(jobs: list[Job], out: Path, address: str | None = None, gpus: float = 0.0,
               max_retries: int = 3) -> list[dict[str, Any]]:
    """Run `jobs` as Ray tasks (skipping those OUT/results.jsonl already holds), a row appended there as each
    finishes and OUT/results.md rewritten; the label-efficiency benchmark (`--runner ray`) and `prefrl sweep` both
    go through here."""
    try:
        import ray
    except ImportError as e:
        raise PrefrlError(f"sweeps run on Ray ({e}): pip install 'prefrl[ray]'") from None
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = _done_keys(results)
    jobs = [j for j in jobs if (j.env, j.arm, j.seed) not in done]
    log.info("%d runs to do, %d already in %s", len(jobs), len(done), results)
    if not jobs:
        return []
    address = address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=max_retries)(_run_job)
    refs = {task.remote(job): job for job in jobs}
    rows, failed = [], []
    with results.open("a") as f:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            job = refs.pop(ready[0])
            try:
                row = ray.get(ready[0])
            except Exception as e:  # noqa: BLE001 - a run's own error: keep the others going, report it at the end
                failed.append(f"{job.env} {job.arm} seed {job.seed}: {str(e).strip().splitlines()[-1]}")
                continue
            f.write(json.dumps(row) + "\n")
            f.flush()
            rows.append(row)
            write_table(out)
            log.info("finished %s %s seed %d (%d left)", job.env, job.arm, job.seed, len(refs))
    if failed:
        raise PrefrlError(f"{len(failed)} of {len(jobs)} runs failed (rerun the sweep to retry them):\n  "
                          + "\n  ".join(failed))
    return rows


def sweep(args: SweepArgs) -> int:
    rows = run_sweep(args)
    print(f"{len(rows)} runs finished; results in {args.out / 'results.jsonl'}, table in {args.out / 'results.md'}")
    return 0
