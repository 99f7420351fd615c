"""--teacher human: a person (here a thread, answering through the store as the window does) teaches the agent;
the run waits for them where it must, or (--no-wait-for-labels) never."""

import json
import sqlite3
import threading
import time

from prefrl.config import QueryConfig, TrainConfig
from prefrl.core.data import Answer
from prefrl.core.labels import PERSON_KEY
from prefrl.core.store import PreferenceStore
from prefrl.loop import train


def _person(path, stop: threading.Event, answered: list[float], leave_after: int | None = None,
            choice: str = "gone") -> None:
    """Answers like a (slow) person: one query every 50 ms, preferring the higher true return; after `leave_after`
    answers, quits the window with `choice` ("gone": go on without me, "stop": stop the run)."""
    while not path.exists() and not stop.is_set():
        time.sleep(0.05)
    store = PreferenceStore(path)
    while not stop.is_set():
        if leave_after is not None and len(answered) >= leave_after:
            store.set_meta(PERSON_KEY, choice)
            return
        q = store.claim_next("person")
        if q is None:
            time.sleep(0.05)
            continue
        shown = time.time()
        left, right = store.clip(q.left_id), store.clip(q.right_id)
        assert left.states is not None  # state was recorded, so the UI could draw the clip
        time.sleep(0.05)
        store.add_label(q.id, Answer.LEFT if left.true_return > right.true_return else Answer.RIGHT, "person",
                        shown=shown)
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
                                   wait_for_labels=False, queries=QueryConfig(max_open=5)))
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
    # the reward model trained on the person's labels: it agrees with most of them (the held-out share alone, a
    # dozen labels when the machine is busy and the person slow, is too few to ask that of)
    assert _agreement_with_labels(out, store) > 0.6


def _agreement_with_labels(out, store: PreferenceStore) -> float:
    """The share of the store's labels (held out or not) that the run's saved reward model agrees with."""
    import numpy as np
    import torch

    from prefrl.checkpoint import load_reward_model
    from prefrl.config import RewardModelConfig
    from prefrl.core.reward.trainer import RewardTrainer
    from prefrl.gym.environments import make_env

    env = make_env("prefrl/PointReach-v0")
    model = load_reward_model(out, env.observation_space, env.action_space)
    trainer = RewardTrainer(model, RewardModelConfig(), np.random.default_rng(0))
    data = trainer.data_from_store(store)
    assert data is not None
    _, accuracy = trainer.evaluate(data, torch.ones(len(data), dtype=torch.bool))
    return accuracy


def _teach(out, leave_after: int | None = None, choice: str = "gone", steps: int = 12_288, labels: int = 40):
    stop, answered = threading.Event(), []
    person = threading.Thread(target=_person, args=(out / "prefs.sqlite", stop, answered, leave_after, choice))
    person.start()
    try:
        result = train(TrainConfig(env="prefrl/PointReach-v0", steps=steps, labels=labels, teacher="human",
                                   window=False, out=out, video_steps=0, eval_episodes=2, progress=False,
                                   update_every=2048, queries=QueryConfig(max_open=5, max_behind=8)))
    finally:
        stop.set()
        person.join()
    return result, answered


def test_the_run_waits_for_the_person_and_trains_on_every_answer(tmp_path):
    """Before RL the run waits for the initial labels; at the end it has asked its whole budget, every question is
    answered, and the last answers came before the final chunk of RL (so the agent trained on them)."""
    out = tmp_path / "run"
    result, answered = _teach(out)
    store = PreferenceStore(out / "prefs.sqlite")
    initial = TrainConfig(env="prefrl/PointReach-v0", labels=40).initial_labels
    rows = [r.split(",") for r in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert int(float(rows[0][2])) == initial  # every initial question answered before the agent took a step
    assert result.labels == 40 == store.count_queries("asked") == len(answered) and store.count_pending() == 0
    assert int(float(rows[-2][2])) == 40 and int(float(rows[-1][0])) > int(float(rows[-2][0]))  # a chunk after
    assert all(lab.shown is not None and lab.created - lab.shown >= 0.05 for lab in store.labels())
    report = (out / "report.md").read_text()  # the person's pace: ~0.05 s a label here
    row = next(line for line in report.splitlines() if line.startswith("| person |"))
    assert row.split("|")[2].strip() == "40" and 0.04 < float(row.split("|")[3]) < 0.5


def test_quitting_the_window_goes_on_without_the_person_or_stops_the_run(tmp_path):
    result, answered = _teach(tmp_path / "gone", leave_after=15, choice="gone")
    assert result.env_steps >= 12_288 and result.labels == len(answered) == 15  # trained on, asked nothing more
    result, answered = _teach(tmp_path / "stop", leave_after=15, choice="stop", steps=40_960)
    summary = json.loads((tmp_path / "stop" / "state.json").read_text())["summary"]
    assert result.env_steps < 40_960 and summary["labels"] == 15  # stopped early, with its report written
    assert (tmp_path / "stop" / "report.png").exists()


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
    assert store.meta("schema_version") == "5"
    assert store.claim_next("a") is not None  # the v2 claim columns exist
    store.add_rating(1, 3.0, "a")
    assert store.ratings() == [(1, 3.0, "a")]
