"""Labels per second a preference store sustains with N labelling processes at once, on SQLite and PostgreSQL.

Each trial fills a fresh store (a new SQLite file, or a new run in the database) with --queries open queries, then
N processes claim and answer them as fast as they can (`claim_next` + `add_label`, each its own committed
transaction, as a labeller does); labels/s = queries / wall time from their common start to the last answer.
One raw row per trial is appended to --rows.

    python scripts/benchmark_store.py --labellers 1 4 16 --queries 3000
    python scripts/benchmark_store.py --pg-url postgresql://prefrl@db.lan/prefrl   # a real server elsewhere

Without --pg-url a throwaway PostgreSQL server (tests/pg.py, durable settings: fsync on) is started in a temp dir.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import tyro

from prefrl.errors import exit_status

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pg, for the throwaway server

from prefrl.core.data import Answer, Clip  # noqa: E402
from prefrl.core.store import open_store  # noqa: E402
from prefrl.interfaces.benchmark import machine  # noqa: E402


@dataclass(frozen=True)
class Args:
    labellers: list[int] = field(default_factory=lambda: [1, 4, 16])
    """Numbers of labelling processes to measure."""
    backends: list[Literal["sqlite", "postgresql"]] = field(default_factory=lambda: ["sqlite", "postgresql"])
    queries: int = 3000
    """Open queries answered in each trial."""
    pg_url: str | None = None
    """A PostgreSQL database to measure (default: a throwaway local server)."""
    rows: Path = Path("docs/benchmark-results-store.jsonl")
    """JSON Lines file the raw rows are appended to."""


def _labeller(run: str, url: str | None, name: str, start: mp.synchronize.Barrier) -> None:
    store = open_store(Path(run), url)
    start.wait()
    while (q := store.claim_next(name)) is not None:
        store.add_label(q.id, Answer.LEFT, name)


def trial(run: Path, url: str | None, queries: int, n: int) -> float:
    """Seconds for `n` labelling processes to answer `queries` open queries."""
    store = open_store(run, url, env_id="Bench-v0")
    rng = np.random.default_rng(0)
    clips = [store.add_clip(Clip(obs=rng.normal(size=(25, 17)).astype(np.float32),
                                 acts=rng.normal(size=(25, 6)).astype(np.float32),
                                 true_rewards=rng.normal(size=25).astype(np.float32))) for _ in range(50)]
    for k in range(queries):
        store.add_query(clips[k % 50], clips[(k + 7) % 50], env_step=k)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(n + 1)
    procs = [ctx.Process(target=_labeller, args=(str(run), url, f"p{k}", start)) for k in range(n)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    wall = time.perf_counter() - t0
    if any(p.exitcode != 0 for p in procs) or store.count_labels() != queries or len(store.checks()) != 0:
        raise RuntimeError(f"trial lost or doubled labels: {store.count_labels()} of {queries}")
    return wall


def main(args: Args) -> None:
    server = None
    url = args.pg_url
    if "postgresql" in args.backends and url is None:
        from tests.pg import PgServer

        server = PgServer.start(fast=False)
        url = server.create_db("bench")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend in args.backends:
                for n in args.labellers:
                    run = Path(tmp) / f"{backend}-{n}-{time.time_ns()}"
                    wall = trial(run, url if backend == "postgresql" else None, args.queries, n)
                    row = {"backend": backend, "labellers": n, "queries": args.queries, "wall_s": round(wall, 3),
                           "labels_per_s": round(args.queries / wall, 1), "server": "throwaway local, fsync on"
                           if backend == "postgresql" and server else ("given" if backend == "postgresql" else
                                                                        "file, WAL, synchronous=NORMAL"),
                           "load_avg_1m": round(os.getloadavg()[0], 2), "machine": machine(),
                           "date": time.strftime("%Y-%m-%d %H:%M")}
                    print(json.dumps(row), flush=True)
                    args.rows.parent.mkdir(parents=True, exist_ok=True)
                    with args.rows.open("a") as f:
                        f.write(json.dumps(row) + "\n")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args))))
