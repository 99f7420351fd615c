"""The comparison window, driven by posted pygame events under SDL's dummy video driver."""

import json
import threading
import time

import numpy as np
import pygame
import pytest

from prefrl.config import RewardModelConfig
from prefrl.core.data import Answer, Clip
from prefrl.core.labels import PERSON_KEY, WAITING_KEY
from prefrl.core.reward.factory import make_reward_model
from prefrl.core.reward.trainer import RewardTrainer, rating_pairs
from prefrl.core.store import PreferenceStore
from prefrl.gym.environments import make_env
from prefrl.gym.render import ClipRenderer, clip_paths, prefetch, save_clip
from prefrl.gym.vec import make_vec_env
from prefrl.gym.wrapper import ClipRecorder, RewardVecEnvWrapper
from prefrl.ui.app import LabelApp
from prefrl.ui.ranking import bradley_terry, ranking_pairs

ENV = "prefrl/PointReach-v0"


@pytest.fixture
def run_dir(tmp_path):
    """A run directory with 6 open queries of PointReach clips (states recorded, clips pre-rendered)."""
    venv = make_vec_env(ENV, 2, seed=0)
    rec = ClipRecorder(2, clip_length=10)
    w = RewardVecEnvWrapper(venv, None, rec)
    w.reset()
    for _ in range(60):
        w.step(np.stack([w.action_space.sample() for _ in range(2)]))
    store = PreferenceStore(tmp_path / "prefs.sqlite", env_id=ENV)
    renderer = ClipRenderer(ENV)
    (tmp_path / "clips").mkdir()
    clips = list(rec.clips)[:12]
    assert all(c.states is not None for c in clips)
    for k in range(6):
        ids = [store.add_clip(c) for c in clips[2 * k: 2 * k + 2]]
        for cid, c in zip(ids, clips[2 * k: 2 * k + 2]):
            save_clip(tmp_path / "clips", cid, renderer.frames(c), renderer.fps)
        store.add_query(ids[0], ids[1], env_step=0)
    return tmp_path


def _app(run_dir, labeler="alice", mode="compare", **kw):
    kw.setdefault("render_worker", False)
    return LabelApp(run_dir, labeler=labeler, mode=mode, ahead=3, size=(800, 500), **kw)


def _text_clip(prompt, completion):
    return Clip(obs=np.zeros((1, 0), dtype=np.int64), acts=np.zeros((1, 0), dtype=np.float32),
                true_rewards=np.array([np.nan]), prompt=prompt, completion=completion)


@pytest.fixture
def text_run(tmp_path):
    """A text run's store: three completions of one prompt in two open queries, then a query on another prompt."""
    store = PreferenceStore(tmp_path / "prefs.sqlite", env_id="text")
    prompt = "Write one sentence about the sea."
    a = [store.add_clip(_text_clip(prompt, c)) for c in
         ("The sea is wide and grey under a low sky. " * 3, "Waves.", "Salt wind, gulls, and the long tide out.")]
    b = [store.add_clip(_text_clip("Name a colour.", c)) for c in ("Blue.", "Vermilion, like a lacquered box.")]
    store.add_query(a[0], a[1], env_step=0)
    store.add_query(a[1], a[2], env_step=0)
    store.add_query(b[0], b[1], env_step=0)
    return tmp_path, a


def _until_shown(app, timeout=5.0):
    deadline = time.time() + timeout
    while app.current is None and time.time() < deadline:
        app.step()
        time.sleep(0.01)
    assert app.current is not None, "no pair came on screen"
    return app.current


def _key(key, char=""):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, unicode=char, mod=0, scancode=0))


def test_key_presses_become_labels_and_backspace_undoes(run_dir):
    app = _app(run_dir)
    store = PreferenceStore(run_dir / "prefs.sqlite")
    try:
        first = _until_shown(app)
        _key(pygame.K_LEFT)
        app.step()
        # committed at once: a separate connection sees it before the next frame
        assert [(lab.query_id, lab.answer) for lab in PreferenceStore(run_dir / "prefs.sqlite").labels()] == \
               [(first.id, Answer.LEFT)]
        second = _until_shown(app)
        assert second.id != first.id
        _key(pygame.K_RIGHT)
        app.step()
        third = _until_shown(app)
        _key(pygame.K_EQUALS, "=")
        app.step()
        fourth = _until_shown(app)
        _key(pygame.K_SPACE, " ")
        app.step()
        assert [lab.answer for lab in store.labels()] == [Answer.LEFT, Answer.RIGHT, Answer.EQUAL, Answer.SKIP]
        _key(pygame.K_BACKSPACE)
        app.step()
        assert _until_shown(app).id == fourth.id  # the undone pair comes back
        assert [lab.answer for lab in store.labels()] == [Answer.LEFT, Answer.RIGHT, Answer.EQUAL]
        assert all(lab.labeler == "alice" for lab in store.labels())
        assert third.id not in [q.id for q in store.pending_queries()]
        assert app.latencies and max(app.latencies) < 1.0
    finally:
        app.close()


def test_mouse_clicks_on_a_clip_and_on_buttons(run_dir):
    app = _app(run_dir)
    store = PreferenceStore(run_dir / "prefs.sqlite")
    try:
        _until_shown(app)
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=app.panels[1].center))
        app.step()
        _until_shown(app)
        equal = next(b for b in app.buttons if b.action == "equal")
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=equal.rect.center))
        app.step()
        assert [lab.answer for lab in store.labels()] == [Answer.RIGHT, Answer.EQUAL]
    finally:
        app.close()


def test_quit_in_the_middle_of_a_query_loses_nothing_and_reopening_continues(run_dir):
    app = _app(run_dir)
    store = PreferenceStore(run_dir / "prefs.sqlite")
    _until_shown(app)
    _key(pygame.K_LEFT)
    app.step()
    in_view = _until_shown(app)
    _key(pygame.K_q, "q")
    assert app.step() is False
    app.close()
    assert store.count_labels() == 1 and in_view.id in [q.id for q in store.pending_queries()]
    again = _app(run_dir)
    try:
        assert _until_shown(again).id == in_view.id  # the queue is as it was, claims released
    finally:
        again.close()


def test_two_labelers_at_once_never_see_the_same_pair(run_dir):
    a, b = _app(run_dir, "alice"), _app(run_dir, "bob")
    store = PreferenceStore(run_dir / "prefs.sqlite")
    try:
        qa, qb = _until_shown(a), _until_shown(b)
        assert qa.id != qb.id
        held = {q.id for q in a.queue} | {qa.id}
        assert not held & ({q.id for q in b.queue} | {qb.id})
        for app in (a, b):
            _key(pygame.K_LEFT)
            app.step()
        assert {(lab.query_id, lab.labeler) for lab in store.labels()} == {(qa.id, "alice"), (qb.id, "bob")}
    finally:
        a.close()
        b.close()


def test_ratings_are_stored_and_reach_the_reward_model(run_dir, rng):
    app = _app(run_dir, mode="rate")
    store = PreferenceStore(run_dir / "prefs.sqlite")
    try:
        given = [("5", pygame.K_5), ("1", pygame.K_1), ("2", pygame.K_2), ("4", pygame.K_4), ("3", pygame.K_3),
                 ("3", pygame.K_3)]
        for char, key in given:
            _until_shown(app)
            _key(key, char)
            app.step()
        assert [v for _, v, _ in store.ratings()] == [5.0, 1.0, 2.0, 4.0, 3.0, 3.0]
        # each rated query also gets the comparison its ratings imply
        assert [lab.answer for lab in store.labels()] == [Answer.LEFT, Answer.RIGHT, Answer.EQUAL]
    finally:
        app.close()
    pairs = rating_pairs(store, rng, val_fraction=0.0)
    query_of = store.query_of_clips()
    assert pairs and all(query_of[a] != query_of[b] for a, b, _, _ in pairs)
    rated = {cid: v for cid, v, _ in store.ratings()}
    for a, b, target, _ in pairs:
        assert target == (1.0 if rated[a] > rated[b] else 0.0 if rated[a] < rated[b] else 0.5)
    env = make_env(ENV)
    model = make_reward_model(env.observation_space, env.action_space, RewardModelConfig())
    data = RewardTrainer(model, RewardModelConfig(), rng).data_from_store(store)
    assert data is not None and len(data) > 3  # the 3 comparisons, plus pairs implied by ratings


def test_render_worker_draws_open_queries_ahead(tmp_path, run_dir):
    for npy in (run_dir / "clips").glob("*"):
        npy.unlink()
    stop = threading.Event()
    worker = threading.Thread(target=prefetch, args=(run_dir, ENV, 2, stop))
    worker.start()
    store = PreferenceStore(run_dir / "prefs.sqlite")
    first_two = store.pending_queries(limit=2)
    deadline = time.time() + 20
    wanted = [clip_paths(run_dir / "clips", cid) for q in first_two for cid in (q.left_id, q.right_id)]
    while time.time() < deadline and not all(npy.exists() and mp4.exists() for npy, mp4 in wanted):
        time.sleep(0.05)
    stop.set()
    worker.join()
    assert all(npy.exists() and mp4.exists() for npy, mp4 in wanted)
    frames = np.load(wanted[0][0])
    assert frames.shape == (10, 128, 128, 3) and frames.dtype == np.uint8
    later = store.pending_queries()[3]
    assert not clip_paths(run_dir / "clips", later.left_id)[0].exists()  # only what is needed soon


def test_mujoco_clips_keep_the_agent_in_the_picture_wherever_it_goes():
    renderer = ClipRenderer("prefrl/HopperBackflip-v0", 128, 128)
    env = renderer.env.unwrapped
    qpos, qvel = env.init_qpos.copy(), env.init_qvel.copy()

    def hopper_pixels(x: float) -> int:
        qpos[0] = x
        env.set_state(qpos, qvel)
        frame = renderer.env.render().astype(int)
        return int(((frame[..., 0] > frame[..., 1] + 40) & (frame[..., 0] > frame[..., 2] + 60)).sum())

    home = hopper_pixels(0.0)
    assert home > 50
    # six metres back (where a few backflips take it) the camera has followed: the hopper is as large
    assert hopper_pixels(-6.0) > 0.8 * home
    renderer.close()


def test_the_window_says_when_the_run_waits_for_labels(run_dir):
    store = PreferenceStore(run_dir / "prefs.sqlite")
    store.set_meta(WAITING_KEY, json.dumps({"answered": 2, "need": 5}))
    app = _app(run_dir)
    try:
        app.step()
        assert "waiting for your labels: 2 of 5" in app.header()[-1]
        assert any("waiting for your labels: 2 of 5" in t for t in app.drawn)  # drawn in the header
        assert app.status()[0] == "waiting for your labels: 2 of 5"  # and in the centre while no pair is shown
        store.set_meta(WAITING_KEY, "")
        app._stats_at = 0.0
        app.step()
        assert not any("waiting for your labels" in t for t in app.drawn)
    finally:
        app.close()


@pytest.mark.parametrize("choice", ["gone", "stop"])
def test_quitting_a_runs_window_asks_and_writes_the_choice(run_dir, choice):
    app = _app(run_dir, asks_on_quit=True)
    store = PreferenceStore(run_dir / "prefs.sqlite")
    _until_shown(app)
    _key(pygame.K_LEFT)
    app.step()
    _key(pygame.K_q, "q")
    assert app.step() and app.dialog  # asks instead of closing
    _key(pygame.K_ESCAPE)
    assert app.step() and not app.dialog  # "keep labelling"
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert app.step() and app.dialog and "Leave labelling?" in app.drawn
    if choice == "gone":
        _key(pygame.K_g, "g")
    else:
        button = next(b for b in app.buttons if b.action == "stop")
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=button.rect.center))
    assert app.step() is False
    app.close()
    assert store.meta(PERSON_KEY) == choice and app.choice == choice
    assert store.count_labels() == 1  # nothing answered is lost


def test_labels_carry_when_their_pair_was_shown(run_dir):
    before = time.time()
    app = _app(run_dir)
    store = PreferenceStore(run_dir / "prefs.sqlite")
    try:
        _until_shown(app)
        app.step()
        drawn_at = app.shown_wall
        time.sleep(0.05)
        _key(pygame.K_RIGHT)
        app.step()
        (label,) = store.labels()
        assert label.shown == drawn_at and before <= label.shown <= label.created - 0.04
        assert store.answer_times()["alice"][0] >= 0.04
    finally:
        app.close()


def test_text_queries_are_shown_without_rendering_and_labelled_by_keys(text_run):
    run, a = text_run
    app = _app(run, render_worker=True)  # asked for, but a text store needs none
    store = PreferenceStore(run / "prefs.sqlite")
    try:
        assert app.text and app._worker is None
        first = _until_shown(app)
        app.step()
        assert "Write one sentence about the sea." in app.drawn and "Waves." in app.drawn
        _key(pygame.K_LEFT)
        app.step()
        _until_shown(app)
        _key(pygame.K_RIGHT)
        app.step()
        assert [(lab.query_id, lab.answer) for lab in store.labels()][:1] == [(first.id, Answer.LEFT)]
        assert [lab.answer for lab in store.labels()] == [Answer.LEFT, Answer.RIGHT]
        assert all(lab.shown is not None for lab in store.labels())
        assert not (run / "clips").exists() or not any((run / "clips").iterdir())
    finally:
        app.close()


def test_text_clips_can_be_rated(text_run):
    run, _ = text_run
    app = _app(run, mode="rate")
    store = PreferenceStore(run / "prefs.sqlite")
    try:
        for char, key in (("2", pygame.K_2), ("4", pygame.K_4)):
            _until_shown(app)
            _key(key, char)
            app.step()
        assert [v for _, v, _ in store.ratings()] == [2.0, 4.0]
        assert [lab.answer for lab in store.labels()] == [Answer.RIGHT]
    finally:
        app.close()


def test_a_ranking_of_three_becomes_its_three_comparisons(text_run):
    run, a = text_run
    app = _app(run, mode="rank", k=3)
    store = PreferenceStore(run / "prefs.sqlite")
    try:
        deadline = time.time() + 5
        while not (app.rank_set and app._have(*app.rank_set)) and time.time() < deadline:
            app.step()
            time.sleep(0.01)
        app.step()
        assert app.rank_set == a  # completions of one prompt only
        assert any("BT +0.00" in t for t in app.drawn)  # scores shown (no labels yet: all equal)
        _key(pygame.K_3, "3")
        app.step()
        _key(pygame.K_BACKSPACE)  # takes back the pick
        app.step()
        assert app.rank_order == []
        _key(pygame.K_3, "3")
        app.step()
        click = app.panels[0].center  # then clip 1 by mouse: the last (clip 2) is implied
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=click))
        app.step()
    finally:
        app.close()
    order = [a[2], a[0], a[1]]  # best first
    pairs = store.labelled_pairs()
    assert len(pairs) == 3
    won = {(q.left_id, q.right_id) if lab.answer is Answer.LEFT else (q.right_id, q.left_id) for q, lab in pairs}
    assert won == set(ranking_pairs(order))
    assert all(lab.shown is not None and lab.labeler == "alice" for _, lab in pairs)
    assert store.count_pending() == 1  # the two open queries were answered; one new query added for (a0, a2)


def test_bradley_terry_orders_clips_as_the_labels_do():
    comparisons = [(1, 2, 1.0), (2, 3, 1.0), (3, 4, 1.0), (1, 3, 1.0), (4, 2, 0.0), (1, 2, 1.0), (3, 2, 0.0)]
    s = bradley_terry(comparisons)
    assert s[1] > s[2] > s[3] > s[4]
    ties = bradley_terry([(5, 6, 0.5), (6, 5, 0.5)])
    assert abs(ties[5] - ties[6]) < 1e-9 and abs(ties[5]) < 1e-9
    once = bradley_terry([(7, 8, 1.0)])
    assert 0 < once[7] < 2 and once[8] == pytest.approx(-once[7])  # the prior keeps an unbeaten clip finite


def test_env_clips_can_be_ranked_too(run_dir):
    app = _app(run_dir, mode="rank", k=4)
    store = PreferenceStore(run_dir / "prefs.sqlite")
    first_two = store.pending_queries(limit=2)
    try:
        deadline = time.time() + 5
        while not (app.rank_set and app._have(*app.rank_set)) and time.time() < deadline:
            app.step()
            time.sleep(0.01)
        app.step()
        assert app.rank_set == [c for q in first_two for c in (q.left_id, q.right_id)]
        for char, key in (("4", pygame.K_4), ("2", pygame.K_2), ("1", pygame.K_1)):
            _key(key, char)
            app.step()
    finally:
        app.close()
    assert store.count_labels() == 6 and not {q.id for q in first_two} & {q.id for q in store.pending_queries()}
