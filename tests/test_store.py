"""The store's contract, on both backends: every test here runs on SQLite and on PostgreSQL (the `backend` fixture)."""

import multiprocessing as mp
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from prefrl.core.data import Answer
from prefrl.core.store import SCHEMA_VERSION, PreferenceStore, open_store
from prefrl.errors import PrefrlError
from tests.conftest import make_clip


def _sql(run: Path, url: str | None, sql: str) -> list[tuple]:
    """Run raw SQL on a test's store (its file, or its database)."""
    if url is None:
        with sqlite3.connect(run / "prefs.sqlite") as c:
            return c.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(url.split("&run=")[0], autocommit=True) as c:
        cur = c.execute(sql)
        return cur.fetchall() if cur.description else []


def test_round_trip_keeps_arrays_queries_and_labels(tmp_path, rng, store_url):
    run = tmp_path / "run"
    store = open_store(run, store_url, env_id="E-v0")
    a, b = make_clip(rng, episode=3, start=10, env_step=99), make_clip(rng)
    ia, ib = store.add_clip(a), store.add_clip(b)
    qid = store.add_query(ia, ib, env_step=99)
    assert [q.id for q in store.pending_queries()] == [qid]
    store.add_label(qid, Answer.RIGHT, labeler="alice")
    # a fresh connection (as after a crash) sees everything
    again = open_store(run, store_url)
    got = again.clip(ia)
    np.testing.assert_array_equal(got.obs, a.obs)
    np.testing.assert_array_equal(got.acts, a.acts)
    np.testing.assert_array_equal(got.true_rewards, a.true_rewards)
    assert (got.episode, got.start, got.env_step) == (3, 10, 99)
    assert again.pending_queries() == []
    [(q, label)] = again.labelled_pairs()
    assert (q.left_id, q.right_id, label.answer, label.labeler) == (ia, ib, Answer.RIGHT, "alice")
    assert again.env_id == "E-v0"


def test_undo_makes_the_query_pending_again(tmp_path, rng, store_url):
    store = open_store(tmp_path / "run", store_url, env_id="E-v0")
    q1 = store.add_query(store.add_clip(make_clip(rng)), store.add_clip(make_clip(rng)), 0)
    q2 = store.add_query(store.add_clip(make_clip(rng)), store.add_clip(make_clip(rng)), 0)
    store.add_label(q1, Answer.LEFT, "bob")
    store.add_label(q2, Answer.EQUAL, "bob")
    undone = store.undo_last_label("bob")
    assert undone is not None and undone.query_id == q2
    assert [q.id for q in store.pending_queries()] == [q2]
    assert store.count_labels() == 1


def test_ratings_and_meta(tmp_path, rng, store_url):
    store = open_store(tmp_path / "run", store_url, env_id="E-v0")
    c = store.add_clip(make_clip(rng))
    store.add_rating(c, 4, "ann")
    store.add_rating(c, 2, "ann")
    assert store.undo_last_rating("ann") == c and store.ratings() == [(c, 4.0, "ann")]
    assert store.meta("person") is None
    store.set_meta("person", "stop")
    store.set_meta("person", "go on")
    assert open_store(tmp_path / "run", store_url).meta("person") == "go on"
    assert store.clip_lengths() == {5} and store.clip_ids() == [c]


def _label_many(run: str, url: str | None, labeler: str, query_ids: list[int]) -> None:
    store = open_store(Path(run), url)
    for q in query_ids:
        store.add_label(q, Answer.LEFT, labeler)


def test_concurrent_writers_lose_nothing(tmp_path, rng, store_url):
    run = tmp_path / "run"
    store = open_store(run, store_url, env_id="E-v0")
    cid = store.add_clip(make_clip(rng))
    qids = [store.add_query(cid, cid, 0) for _ in range(120)]
    # two processes and two threads label disjoint queries at once while this thread adds queries
    procs = [mp.get_context("spawn").Process(target=_label_many, args=(str(run), store_url, f"p{k}", qids[k::4]))
             for k in range(2)]
    threads = [threading.Thread(target=_label_many, args=(str(run), store_url, f"t{k}", qids[2 + k::4]))
               for k in range(2)]
    for w in procs + threads:
        w.start()
    extra = [store.add_query(cid, cid, 1) for _ in range(30)]
    for w in procs + threads:
        w.join()
    assert all(p.exitcode == 0 for p in procs)
    assert store.count_labels() == 120
    assert {lab.labeler for lab in store.labels()} == {"p0", "p1", "t0", "t1"}
    assert sorted(q.id for q in store.pending_queries()) == extra


def test_second_answer_to_a_query_keeps_the_first(tmp_path, rng, store_url):
    store = open_store(tmp_path / "run", store_url, env_id="E-v0")
    cid = store.add_clip(make_clip(rng))
    q = store.add_query(cid, cid, 0)
    store.add_label(q, Answer.LEFT, "a")
    store.add_label(q, Answer.RIGHT, "b")
    assert [(lab.answer, lab.labeler) for lab in store.labels()] == [(Answer.LEFT, "a")]


def test_claims_keep_two_labellers_apart_until_the_lease_lapses(tmp_path, rng, store_url):
    store = open_store(tmp_path / "run", store_url, env_id="E-v0")
    cid = store.add_clip(make_clip(rng))
    q1, q2 = store.add_query(cid, cid, 0), store.add_query(cid, cid, 0)
    a = store.claim_next("ann")
    assert a is not None and a.id == q1 and store.claim_of(q1) is not None
    b = store.claim_next("bob")
    assert b is not None and b.id == q2
    assert store.claim_next("carl") is None
    assert store.claim_next("ann", exclude={q1}) is None  # ann's own claim can be skipped, bob's is not hers
    store.release_claims("ann")
    again = store.claim_next("carl")
    assert again is not None and again.id == q1
    late = store.claim_next("dora", lease_s=0.0)  # lapsed at once
    assert late is not None and late.id == q1


def test_store_of_another_env_is_refused(tmp_path, store_url):
    open_store(tmp_path / "run", store_url, env_id="A-v0")
    with pytest.raises(PrefrlError, match="holds clips of env 'A-v0'"):
        open_store(tmp_path / "run", store_url, env_id="B-v0")


def test_newer_schema_is_refused(tmp_path, store_url):
    run = tmp_path / "run"
    open_store(run, store_url, env_id="A-v0")
    if store_url is None:
        _sql(run, None, f"UPDATE meta SET value='{SCHEMA_VERSION + 1}' WHERE key='schema_version'")
    else:
        _sql(run, store_url, "UPDATE prefrl_schema SET version = version + 1")
    with pytest.raises(PrefrlError, match="upgrade prefrl"):
        open_store(run, store_url)


def test_missing_store_is_a_clear_error(tmp_path, store_url):
    with pytest.raises(PrefrlError, match="no preference store|no run 'nope'"):
        open_store(tmp_path / "nope", store_url)


def test_a_second_labellers_answer_is_kept_as_a_check_not_a_label(tmp_path, rng, store_url):
    store = open_store(tmp_path / "run", store_url, env_id="E-v0")
    a, b = store.add_clip(make_clip(rng)), store.add_clip(make_clip(rng))
    q = store.add_query(a, b, env_step=0)
    first = store.add_label(q, Answer.LEFT, "ann", shown=time.time() - 3.0)
    assert store.add_label(q, Answer.RIGHT, "bob", shown=time.time() - 1.0) == first  # the standing label stays
    assert store.add_label(q, Answer.RIGHT, "bob") == first  # bob's second answer adds nothing
    assert [(lab.labeler, lab.answer) for lab in store.labels()] == [("ann", Answer.LEFT)]
    assert store.count_labels() == 1 and store.count_pending() == 0
    (standing, check), = store.checks()
    assert (standing.labeler, check.labeler, check.answer) == ("ann", "bob", Answer.RIGHT)
    times = store.answer_times()
    assert 2.9 < times["ann"][0] < 4 and 0.9 < times["bob"][0] < 2
    store.undo_last_label("bob")  # withdrawing the check leaves the query answered
    assert store.checks() == [] and store.count_pending() == 0


def test_claim_check_hands_an_answered_query_to_a_second_labeller(tmp_path, rng, store_url):
    store = open_store(tmp_path / "run", store_url, env_id="E-v0")
    cid = store.add_clip(make_clip(rng))
    qs = [store.add_query(cid, cid, 0) for _ in range(4)]
    for q in qs:
        store.add_label(q, Answer.LEFT, "ann")
    assert store.claim_check("ann", 1.0) is None  # never one's own answers
    got = store.claim_check("bob", 1.0)
    assert got is not None and got.id == qs[0]
    assert store.claim_check("carl", 1.0).id == qs[1]  # type: ignore[union-attr]  # bob holds the first
    store.add_label(qs[0], Answer.RIGHT, "bob")
    assert [k.query_id for _, k in store.checks()] == [qs[0]]


def test_labeller_tokens_are_stored_hashed(tmp_path, store_url):
    run = tmp_path / "run"
    store = open_store(run, store_url, env_id="E-v0")
    token = store.add_labeler("ann")
    assert store.labeler_of(token) == "ann" and store.labeler_of(token + "x") is None
    if store_url is None:
        assert token.encode() not in (run / "prefs.sqlite").read_bytes()
    else:
        assert token not in str(_sql(run, store_url, "SELECT * FROM labelers"))
    new = store.add_labeler("ann")  # a new token replaces the old one
    assert store.labeler_of(new) == "ann" and store.labeler_of(token) is None and store.labelers() == ["ann"]


def test_sqlite_store_opens_as_before(tmp_path):
    """`PreferenceStore(path)` is still the SQLite store, and `open_store` with no URL is that file."""
    store = open_store(tmp_path / "run", None, env_id="E-v0")
    assert isinstance(store, PreferenceStore) and store.path == tmp_path / "run" / "prefs.sqlite"
    with pytest.raises(PrefrlError, match="postgresql://"):
        open_store(tmp_path / "run", "mysql://db/x")


# -- PostgreSQL only -------------------------------------------------------------------------------------------
def test_many_runs_share_one_database_apart(tmp_path, rng, pg_server):
    url = pg_server.create_db()
    a = open_store(tmp_path / "a", url, env_id="A-v0")
    b = open_store(tmp_path / "elsewhere", url + "&run=b", env_id="B-v0")
    cid = a.add_clip(make_clip(rng))
    a.add_label(a.add_query(cid, cid, 0), Answer.LEFT, "ann")
    b.add_query(b.add_clip(make_clip(rng)), b.add_clip(make_clip(rng)), 0)
    assert (a.count_labels(), a.count_pending(), b.count_labels(), b.count_pending()) == (1, 0, 0, 1)
    assert open_store(tmp_path / "b", url).env_id == "B-v0"  # the run's name: the directory's, or ?run=
    assert len(a.clip_ids()) == 1 and len(b.clip_ids()) == 2


def test_postgres_schema_migrates(tmp_path, pg_server, monkeypatch):
    from prefrl.core.store import postgres

    url = pg_server.create_db()
    open_store(tmp_path / "run", url, env_id="E-v0")
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", postgres.SCHEMA_VERSION + 1)
    monkeypatch.setitem(postgres._MIGRATIONS, postgres.SCHEMA_VERSION, ["ALTER TABLE clips ADD COLUMN note TEXT"])
    store = open_store(tmp_path / "run", url)
    assert store.env_id == "E-v0"
    assert _sql(tmp_path, url, "SELECT version FROM prefrl_schema") == [(postgres.SCHEMA_VERSION,)]
    assert _sql(tmp_path, url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'clips' "
                               "AND column_name = 'note'") == [("note",)]


def test_unreachable_server_is_a_clear_error(tmp_path, pg_server):
    with pytest.raises(PrefrlError, match="cannot open the PostgreSQL store .*start the server"):
        open_store(tmp_path / "run", f"postgresql://postgres@/x?host={pg_server.root}&port=1", env_id="E-v0")
