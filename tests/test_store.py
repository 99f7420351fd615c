import multiprocessing as mp
import sqlite3
import threading

import numpy as np
import pytest

from prefrl.core.data import Answer
from prefrl.core.store import SCHEMA_VERSION, PreferenceStore
from prefrl.errors import PrefrlError
from tests.conftest import make_clip


def test_round_trip_keeps_arrays_queries_and_labels(tmp_path, rng):
    store = PreferenceStore(tmp_path / "p.sqlite", env_id="E-v0")
    a, b = make_clip(rng, episode=3, start=10, env_step=99), make_clip(rng)
    ia, ib = store.add_clip(a), store.add_clip(b)
    qid = store.add_query(ia, ib, env_step=99)
    assert [q.id for q in store.pending_queries()] == [qid]
    store.add_label(qid, Answer.RIGHT, labeler="alice")
    # a fresh connection (as after a crash) sees everything
    again = PreferenceStore(tmp_path / "p.sqlite")
    got = again.clip(ia)
    np.testing.assert_array_equal(got.obs, a.obs)
    np.testing.assert_array_equal(got.acts, a.acts)
    np.testing.assert_array_equal(got.true_rewards, a.true_rewards)
    assert (got.episode, got.start, got.env_step) == (3, 10, 99)
    assert again.pending_queries() == []
    [(q, label)] = again.labelled_pairs()
    assert (q.left_id, q.right_id, label.answer, label.labeler) == (ia, ib, Answer.RIGHT, "alice")
    assert again.env_id == "E-v0"


def test_undo_makes_the_query_pending_again(tmp_path, rng):
    store = PreferenceStore(tmp_path / "p.sqlite", env_id="E-v0")
    q1 = store.add_query(store.add_clip(make_clip(rng)), store.add_clip(make_clip(rng)), 0)
    q2 = store.add_query(store.add_clip(make_clip(rng)), store.add_clip(make_clip(rng)), 0)
    store.add_label(q1, Answer.LEFT, "bob")
    store.add_label(q2, Answer.EQUAL, "bob")
    undone = store.undo_last_label("bob")
    assert undone is not None and undone.query_id == q2
    assert [q.id for q in store.pending_queries()] == [q2]
    assert store.count_labels() == 1


def _label_many(path: str, labeler: str, query_ids: list[int]) -> None:
    store = PreferenceStore(path)
    for q in query_ids:
        store.add_label(q, Answer.LEFT, labeler)


def test_concurrent_writers_lose_nothing(tmp_path, rng):
    path = tmp_path / "p.sqlite"
    store = PreferenceStore(path, env_id="E-v0")
    cid = store.add_clip(make_clip(rng))
    qids = [store.add_query(cid, cid, 0) for _ in range(120)]
    # two processes and two threads label disjoint queries at once while this thread adds queries
    procs = [mp.get_context("spawn").Process(target=_label_many, args=(str(path), f"p{k}", qids[k::4]))
             for k in range(2)]
    threads = [threading.Thread(target=_label_many, args=(str(path), f"t{k}", qids[2 + k::4])) for k in range(2)]
    for w in procs + threads:
        w.start()
    extra = [store.add_query(cid, cid, 1) for _ in range(30)]
    for w in procs + threads:
        w.join()
    assert all(p.exitcode == 0 for p in procs)
    assert store.count_labels() == 120
    assert {lab.labeler for lab in store.labels()} == {"p0", "p1", "t0", "t1"}
    assert sorted(q.id for q in store.pending_queries()) == extra


def test_second_answer_to_a_query_keeps_the_first(tmp_path, rng):
    store = PreferenceStore(tmp_path / "p.sqlite", env_id="E-v0")
    cid = store.add_clip(make_clip(rng))
    q = store.add_query(cid, cid, 0)
    store.add_label(q, Answer.LEFT, "a")
    store.add_label(q, Answer.RIGHT, "b")
    assert [(lab.answer, lab.labeler) for lab in store.labels()] == [(Answer.LEFT, "a")]


def test_store_of_another_env_is_refused(tmp_path):
    PreferenceStore(tmp_path / "p.sqlite", env_id="A-v0")
    with pytest.raises(PrefrlError, match="holds clips of env 'A-v0'"):
        PreferenceStore(tmp_path / "p.sqlite", env_id="B-v0")


def test_newer_schema_is_refused(tmp_path):
    PreferenceStore(tmp_path / "p.sqlite", env_id="A-v0")
    with sqlite3.connect(tmp_path / "p.sqlite") as c:
        c.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(PrefrlError, match="upgrade prefrl"):
        PreferenceStore(tmp_path / "p.sqlite")


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(PrefrlError, match="no preference store"):
        PreferenceStore(tmp_path / "nope.sqlite")
