"""--teacher human: the agent trains on while a person (here a thread, as the UI would) answers queries."""

import sqlite3
import threading
import time

from prefrl.config import QueryConfig, TrainConfig
from prefrl.core.data import Answer
from prefrl.core.store import PreferenceStore
from prefrl.loop import train


def _person(path, stop: threading.Event, answered: list[float]) -> None:
    """Answers like a (slow) person: one query every 50 ms, preferring the higher true return."""
    while not path.exists() and not stop.is_set():
        time.sleep(0.05)
    store = PreferenceStore(path)
    while not stop.is_set():
        q = store.claim_next("person")
        if q is None:
            time.sleep(0.05)
            continue
        left, right = store.clip(q.left_id), store.clip(q.right_id)
        assert left.states is not None  # state was recorded, so the UI could draw the clip
        store.add_label(q.id, Answer.LEFT if left.true_return > right.true_return else Answer.RIGHT, "person")
        answered.append(time.time())
        time.sleep(0.05)


def test_agent_never_waits_for_the_person_and_learns_from_their_labels(tmp_path):
    out = tmp_path / "run"
    stop, answered = threading.Event(), []
    person = threading.Thread(target=_person, args=(out / "prefs.sqlite", stop, answered))
    person.start()
    try:
        t0 = time.time()
        result = train(TrainConfig(env="prefrl/PointReach-v0", steps=16_000, labels=100, teacher="human",
                                   window=False, out=out, video_steps=0, eval_episodes=5, progress=False,
                                   queries=QueryConfig(max_open=5)))
        wall = time.time() - t0
    finally:
        stop.set()
        person.join()
    store = PreferenceStore(out / "prefs.sqlite")
    labels = store.labels()
    assert result.env_steps >= 16_000
    assert labels and {lab.labeler for lab in labels} == {"person"}
    # the agent did not wait: the run took about as long as the person allowed it, not labels x 50 ms more
    assert wall < 120
    # never more than max_open queries were left waiting for the person
    assert store.count_queries() - len(labels) <= 5
    rows = (out / "metrics.csv").read_text().splitlines()
    assert float(rows[-1].split(",")[5]) > 0.5  # the reward model trained on the person's labels


def test_v1_store_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as c:
        c.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1'), ('env_id', 'E-v0');
        CREATE TABLE clips (id INTEGER PRIMARY KEY, env_id TEXT NOT NULL, episode INTEGER NOT NULL,
            start INTEGER NOT NULL, length INTEGER NOT NULL, env_step INTEGER NOT NULL, true_return REAL,
            data BLOB NOT NULL, created REAL NOT NULL);
        CREATE TABLE queries (id INTEGER PRIMARY KEY, left_clip INTEGER NOT NULL, right_clip INTEGER NOT NULL,
            env_step INTEGER NOT NULL, created REAL NOT NULL);
        CREATE TABLE labels (id INTEGER PRIMARY KEY, query_id INTEGER NOT NULL, answer TEXT NOT NULL,
            labeler TEXT NOT NULL, created REAL NOT NULL, undone INTEGER NOT NULL DEFAULT 0);
        INSERT INTO clips VALUES (1, 'E-v0', 0, 0, 1, 0, 0.0, x'00', 0.0);
        INSERT INTO queries VALUES (1, 1, 1, 0, 0.0);
        """)
    store = PreferenceStore(path)
    assert store.meta("schema_version") == "4"
    assert store.claim_next("a") is not None  # the v2 claim columns exist
    store.add_rating(1, 3.0, "a")
    assert store.ratings() == [(1, 3.0, "a")]
