"""Atari games end to end: SB3 preprocessing, the CNN reward model in the loop, clips a person can see."""

import time

import numpy as np
import pygame
import pytest

from prefrl.config import AgentConfig, QueryConfig, RewardModelConfig, TrainConfig
from prefrl.core.data import Answer
from prefrl.core.store import PreferenceStore
from prefrl.gym import atari
from prefrl.gym.render import ClipRenderer
from prefrl.loop import train
from prefrl.ui.app import LabelApp

ENV = "ALE/Pong-v5"


@pytest.fixture(scope="module")
def pong_run(tmp_path_factory):
    """A short learned-reward Pong run with a scripted teacher (small PPO and reward model, for a CPU)."""
    out = tmp_path_factory.mktemp("pong")
    result = train(TrainConfig(
        env=ENV, steps=2048, labels=8, out=out, video_steps=0, eval_episodes=0, progress=False, update_every=1024,
        queries=QueryConfig(clip_length=25),
        reward_model=RewardModelConfig(members=2, batch_size=4, max_updates=10),
        agent=AgentConfig(n_envs=2, n_steps=128, batch_size=128, n_epochs=1)))
    return result


def test_pong_trains_through_the_loop_with_the_cnn_reward_model(pong_run):
    import torch

    assert pong_run.env_steps >= 2048 and pong_run.labels >= 4
    state = torch.load(pong_run.run_dir / "reward_model" / "model.pt", weights_only=True)
    assert any(k.startswith("body.convs.") for k in state) and bool(state["is_fitted"])
    store = PreferenceStore(pong_run.run_dir / "prefs.sqlite")
    clip = store.clip(store.labelled_pairs()[0][0].left_id)
    assert clip.obs.shape == (25, 4, 84, 84) and clip.obs.dtype == np.uint8  # what the agent saw
    assert clip.states is not None and clip.states.dtype == np.uint8


def test_stored_clips_render_as_the_agent_saw_them(pong_run):
    store = PreferenceStore(pong_run.run_dir / "prefs.sqlite")
    renderer = ClipRenderer(ENV)
    q, _ = store.labelled_pairs()[-1]
    for cid in (q.left_id, q.right_id):
        clip = store.clip(cid)
        frames = renderer.frames(clip)
        assert frames.shape == (25, 210, 160, 3) and frames.dtype == np.uint8
        assert atari.newest_frames_match(renderer.env, frames, clip.obs) == 1.0
    assert renderer.fps == 15.0  # 60 emulator frames a second, 4 a step
    renderer.close()


def test_label_window_shows_atari_clips_drawn_by_its_render_worker(pong_run):
    store = PreferenceStore(pong_run.run_dir / "prefs.sqlite")
    q, _ = store.labelled_pairs()[0]
    new_q = store.add_query(q.right_id, q.left_id, env_step=0)  # an open query for the person
    app = LabelApp(pong_run.run_dir, labeler="carol", ahead=1, size=(800, 500))  # spawns the render worker
    try:
        deadline = time.time() + 60
        while app.current is None and time.time() < deadline:
            app.step()
            time.sleep(0.02)
        assert app.current is not None and app.current.id == new_q
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT, unicode="", mod=0, scancode=0))
        app.step()
    finally:
        app.close()
    labels = [lab for lab in store.labels() if lab.query_id == new_q]
    assert [(lab.answer, lab.labeler) for lab in labels] == [(Answer.LEFT, "carol")]
    assert np.load(pong_run.run_dir / "clips" / f"{q.left_id}.npy").shape == (25, 210, 160, 3)
