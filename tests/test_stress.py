"""Many at once, nothing lost: one trainer process adding clips and queries while 8 labelling processes claim and
answer them, on each backend. Every answer is stored exactly once, no query gets two standing labels, and a
labeller SIGKILLed holding a claim loses nothing: its claim lapses and another labeller answers the query."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from prefrl.core.data import Answer
from prefrl.core.store import open_store
from tests.conftest import make_clip

LEASE_S = 2.0


def _trainer(run: str, url: str | None, queries: int, batch: int, done: mp.synchronize.Event) -> None:
    """Adds clips and queries in rounds, as a training run does between its reward-model updates."""
    store = open_store(Path(run), url)
    rng = np.random.default_rng(0)
    added = 0
    while added < queries:
        clips = [store.add_clip(make_clip(rng, env_step=added)) for _ in range(4)]
        for k in range(min(batch, queries - added)):
            store.add_query(clips[k % 4], clips[(k + 1) % 4], env_step=added)
            added += 1
    done.set()


def _labeller(run: str, url: str | None, name: str, trainer_done: mp.synchronize.Event, log: str,
              freeze: bool) -> None:
    """Claims and answers until the trainer is done and nothing is open. Appends each (query, label id) it was told
    it wrote to its own `log` file (a file, not a queue: a SIGKILLed writer cannot wedge it). With `freeze` it stops
    at its first claim, holding it, and says so in LOG.claimed (the test SIGKILLs it then)."""
    store = open_store(Path(run), url)
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    with open(log, "a") as out:
        while True:
            q = store.claim_next(name, lease_s=LEASE_S)
            if q is None:
                if trainer_done.is_set() and store.count_pending() == 0:
                    return
                time.sleep(0.002)
                continue
            if freeze:
                Path(log + ".tmp").write_text(str(q.id))
                os.replace(log + ".tmp", log + ".claimed")
                time.sleep(3600)  # holding the claim until killed
            label_id = store.add_label(q.id, Answer.LEFT if rng.random() < 0.5 else Answer.RIGHT, name)
            out.write(f"{q.id} {label_id}\n")
            out.flush()


def stress(run: Path, url: str | None, queries: int, labellers: int = 8) -> dict[str, float]:
    store = open_store(run, url, env_id="E-v0")
    ctx = mp.get_context("spawn")
    done = ctx.Event()
    logs = [str(run.parent / f"person{k}.log") for k in range(labellers)]
    t0 = time.perf_counter()
    trainer = ctx.Process(target=_trainer, args=(str(run), url, queries, 50, done))
    people = [ctx.Process(target=_labeller, args=(str(run), url, f"person{k}", done, logs[k], k == 0))
              for k in range(labellers)]
    for p in [trainer, people[0]]:
        p.start()
    claimed = Path(logs[0] + ".claimed")
    deadline = time.time() + 240
    # the labeller to kill holds a claim before the others start: otherwise, slower to start, it could find every
    # query already answered and leave before it could be killed
    while not claimed.exists() and people[0].is_alive() and time.time() < deadline:
        time.sleep(0.01)
    for p in people[1:]:
        p.start()
    killed_claim = int(claimed.read_text()) if claimed.exists() else None
    if people[0].is_alive():
        os.kill(people[0].pid, signal.SIGKILL)  # type: ignore[arg-type]
    for p in [trainer, *people]:
        p.join(timeout=max(1.0, deadline - time.time()))
    wall = time.perf_counter() - t0
    hung = [p for p in [trainer, *people] if p.is_alive()]
    for p in hung:
        p.kill()
    assert not hung, "a process hung"
    assert trainer.exitcode == 0 and all(p.exitcode == 0 for p in people[1:]), "a process failed"
    assert people[0].exitcode == -signal.SIGKILL and killed_claim, "the labeller to kill never held a claim"
    written = [tuple(map(int, line.split())) for log in logs for line in Path(log).read_text().splitlines()]

    labels = store.labels()
    standing = {lab.query_id: lab for lab in labels}
    assert len(standing) == len(labels), "a query has two standing labels"
    assert store.count_queries() == queries
    assert store.count_pending() == 0 and len(labels) == queries, "a query was left unanswered"
    # every answer a labeller was told it stored is its query's standing label; an answer given after its claim
    # lapsed (a slow labeller) is kept once, as a check of the standing label, never as a second label
    assert all(standing[qid].id == lid for qid, lid in written)
    assert {lid for _, lid in written} == {lab.id for lab in labels}
    assert len(store.checks()) == len(written) - queries
    assert standing[killed_claim].labeler != "person0", "the killed labeller's claim was never answered by another"
    return {"labels": len(labels), "wall_s": wall, "labels_per_s": len(labels) / wall}


@pytest.mark.parametrize("queries", [2000])
def test_one_trainer_and_eight_labellers_lose_nothing(tmp_path, store_url, queries):
    got = stress(tmp_path / "run", store_url, queries)
    assert got["labels"] == queries


@pytest.mark.slow
def test_one_trainer_and_eight_labellers_lose_nothing_at_scale(tmp_path, store_url):
    got = stress(tmp_path / "run", store_url, 20_000)
    assert got["labels"] == 20_000
