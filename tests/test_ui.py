"""The comparison window, driven by posted pygame events under SDL's dummy video driver."""

import threading
import time

import numpy as np
import pygame
import pytest

from prefrl.config import RewardModelConfig
from prefrl.core.data import Answer
from prefrl.core.reward.factory import make_reward_model
from prefrl.core.reward.trainer import RewardTrainer, rating_pairs
from prefrl.core.store import PreferenceStore
from prefrl.gym.environments import make_env
from prefrl.gym.render import ClipRenderer, clip_paths, prefetch, save_clip
from prefrl.gym.vec import make_vec_env
from prefrl.gym.wrapper import ClipRecorder, RewardVecEnvWrapper
from prefrl.ui.app import LabelApp

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


def _app(run_dir, labeler="alice", mode="compare"):
    return LabelApp(run_dir, labeler=labeler, mode=mode, ahead=3, size=(800, 500), render_worker=False)


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
