"""Nothing is lost when things go wrong: a run SIGKILLed at random moments and resumed ends with exactly its label
budget, and labelling processes answering one store at once leave each query at most one standing label."""

import json
import multiprocessing as mp
import multiprocessing.synchronize
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from prefrl.core.data import Answer
from prefrl.core.store import PreferenceStore, open_store
from tests.conftest import make_clip

STEPS, LABELS = 24_576, 80
TRAIN = [sys.executable, "-m", "prefrl", "train", "--env", "prefrl/PointReach-v0", "--steps", str(STEPS),
         "--labels", str(LABELS), "--update-every", "1024", "--video-steps", "0", "--eval-episodes", "1",
         "--no-progress"]


def _run_until_killed(out: Path, delay: float) -> int | None:
    """Start (or resume) the run; SIGKILL it `delay` seconds after it has a config.json. The exit code if it
    finished first, else None."""
    cmd = TRAIN + ["--out", str(out)] + (["--resume"] if (out / "config.json").exists() else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not (out / "config.json").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    try:
        return proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None


def test_run_killed_at_random_moments_ends_with_exactly_its_label_budget(tmp_path):
    out = tmp_path / "run"
    rng = np.random.default_rng(7)
    seen: list[tuple[int, str]] = []
    kills = 0
    for attempt in range(12):
        delay = float(rng.uniform(0.5, 4.0)) if kills < 4 else 600.0
        code = _run_until_killed(out, delay)
        if not (out / "prefs.sqlite").exists():  # killed before the run opened its store: nothing to lose yet
            kills += code is None
            continue
        store = PreferenceStore(out / "prefs.sqlite")
        now = [(lab.id, lab.answer.value) for lab in store.labels()]
        assert now[: len(seen)] == seen, "a label given before a kill was lost or changed"
        seen = now
        store.close()
        if code is None:
            kills += 1
            continue
        assert code == 0, f"attempt {attempt} failed"
        break
    assert kills >= 3, "the run finished before it could be killed three times: raise STEPS"
    state = json.loads((out / "state.json").read_text())
    store = PreferenceStore(out / "prefs.sqlite")
    assert state["summary"]["env_steps"] >= STEPS
    assert store.count_queries("asked") == LABELS == store.count_labels(include_skips=False)
    assert store.count_pending() == 0
    assert state["summary"]["labels"] == LABELS


def _labeller(run: str, url: str | None, name: str, queue: "mp.Queue[tuple[str, int, int]]",
              start: "mp.synchronize.Barrier") -> None:
    """Claims and answers queries until none is open; reports every label it was told it wrote."""
    store = open_store(Path(run), url)
    rng = np.random.default_rng(int(name[-1]))
    start.wait()
    while True:
        q = store.claim_next(name, lease_s=0.0)  # leases lapse at once: the labellers race for the same queries
        if q is None:
            if store.count_pending() == 0:
                break
            continue
        label_id = store.add_label(q.id, Answer.LEFT if rng.random() < 0.5 else Answer.RIGHT, name)
        queue.put((name, q.id, label_id))
        time.sleep(0.002)  # a person pauses between labels: the others get their turns at the lock


def test_four_labellers_at_once_give_each_query_one_standing_label_and_lose_none(tmp_path, rng, store_url):
    store = open_store(tmp_path, store_url, env_id="E-v0")  # on each backend
    ids = [store.add_clip(make_clip(rng)) for _ in range(20)]
    queries = [store.add_query(ids[k % 20], ids[(k + 1) % 20], env_step=k) for k in range(400)]
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()
    start = ctx.Barrier(4)
    procs = [ctx.Process(target=_labeller, args=(str(tmp_path), store_url, f"person{k}", results, start))
             for k in range(4)]
    for p in procs:
        p.start()
    got = []
    while any(p.is_alive() for p in procs) or not results.empty():
        try:
            got.append(results.get(timeout=0.5))
        except Exception:  # noqa: BLE001 - queue.Empty: poll again while the labellers run
            pass
    for p in procs:
        p.join()
        assert p.exitcode == 0
    labels = store.labels()
    by_query: dict[int, list[int]] = {}
    for lab in labels:
        by_query.setdefault(lab.query_id, []).append(lab.id)
    assert sorted(by_query) == queries, "a query was left unanswered"
    assert all(len(v) == 1 for v in by_query.values()), "a query has two standing labels"
    standing = {lab.id for lab in labels}
    # every write a labeller made is the standing label of its query: none vanished
    assert {label_id for _, _, label_id in got} <= standing
    assert {by_query[qid][0] for _, qid, _ in got} == standing
    assert len({name for name, _, _ in got}) >= 2, "only one labeller got to answer"
