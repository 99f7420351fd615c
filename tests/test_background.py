"""Fitting off the agent's path: the live model changes only when the loop swaps weights in; a failed fit ends the
run with a clear error; a fitting process does what the thread does; a run's stage timers add up to its wall time; a
scripted teacher can stand in for a person."""

import copy
import csv
import dataclasses
import functools
import math
import multiprocessing as mp

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.config import RewardModelConfig, TeacherConfig, TrainConfig
from prefrl.core.data import Answer, Clip
from prefrl.core.reward.background import BackgroundFitter, FitFailed, ProcessFitter
from prefrl.core.reward.factory import make_reward_model
from prefrl.core.reward.trainer import RewardTrainer
from prefrl.core.store import PreferenceStore
from prefrl.core.teachers import ScriptedTeacher
from prefrl.errors import PrefrlError
from prefrl.loop import train
from prefrl.report import write_report
from prefrl.run_dir import RunDir
from tests.conftest import make_clip


def _labelled_store(tmp_path, rng, n: int = 40) -> PreferenceStore:
    store = PreferenceStore(tmp_path / "p.sqlite", env_id="E-v0")
    for _ in range(n):
        a, b = make_clip(rng), make_clip(rng)
        q = store.add_query(store.add_clip(a), store.add_clip(b), env_step=0)
        store.add_label(q, Answer.LEFT if a.true_return > b.true_return else Answer.RIGHT, "oracle")
    return store


def test_the_live_model_takes_new_weights_only_when_swapped(tmp_path, rng):
    cfg = RewardModelConfig(members=2, epochs=5)
    live = make_reward_model(gym.spaces.Box(-9, 9, (3,)), gym.spaces.Box(-1, 1, (2,)), cfg)
    fitter = BackgroundFitter(live, RewardTrainer(copy.deepcopy(live), cfg, rng))
    before = {k: v.clone() for k, v in live.state_dict().items()}
    store = _labelled_store(tmp_path, rng)
    assert fitter.submit(store, [make_clip(rng) for _ in range(5)])
    fitter._thread.join()  # the fit is done, but the agent's model is untouched until the loop swaps
    assert all(torch.equal(before[k], v) for k, v in live.state_dict().items())
    assert fitter.swap() and live.fitted and fitter.stats is not None and fitter.fits == 1
    assert not all(torch.equal(before[k], v) for k, v in live.state_dict().items())
    weights, trainer_state = fitter.saved_state()
    assert torch.equal(weights["out_std"], live.out_std) and "opt" in trainer_state
    assert not fitter.swap()  # nothing new since


def test_a_failed_fit_ends_the_run_with_its_cause(tmp_path, rng):
    cfg = RewardModelConfig(members=2)
    live = make_reward_model(gym.spaces.Box(-9, 9, (4,)), gym.spaces.Box(-1, 1, (2,)), cfg)  # clips have 3 obs
    fitter = BackgroundFitter(live, RewardTrainer(copy.deepcopy(live), cfg, rng))
    fitter.submit(_labelled_store(tmp_path, rng), [])
    with pytest.raises(FitFailed, match="background fit failed: RuntimeError"):
        fitter.wait()


def test_a_fitting_process_gives_the_threads_weights_and_ends_the_run_when_it_fails(tmp_path, rng):
    cfg = RewardModelConfig(members=2, epochs=5)
    store = _labelled_store(tmp_path, rng)
    clips = [make_clip(rng) for _ in range(5)]
    opener = functools.partial(type(store), tmp_path / "p.sqlite", env_id="E-v0")
    lives, fitters = [], []
    base = make_reward_model(gym.spaces.Box(-9, 9, (3,)), gym.spaces.Box(-1, 1, (2,)), cfg)
    for kind in (BackgroundFitter, ProcessFitter):
        live = copy.deepcopy(base)
        trainer = RewardTrainer(copy.deepcopy(live), cfg, np.random.default_rng(7))
        fitters.append(kind(live, trainer) if kind is BackgroundFitter else kind(live, trainer, opener))
        lives.append(live)
    thread, process = fitters
    before = {k: v.clone() for k, v in lives[1].state_dict().items()}
    for fitter in fitters:
        assert fitter.submit(store, clips)
    assert not process.submit(store, clips)  # one fit at a time: the next round's picks up what this one missed
    thread.wait()
    while process.busy:  # the fit is done when the process says so; the agent's model waits for the swap
        assert all(torch.equal(before[k], v) for k, v in lives[1].state_dict().items())
    assert process.swap() and process.fits == 1 and process.stats == thread.stats
    for (k, v), w in zip(lives[0].state_dict().items(), lives[1].state_dict().values()):
        assert torch.allclose(v, w), k  # the same fit from the same trainer and random stream, in another process
    weights, trainer_state = process.saved_state()
    assert torch.equal(weights["out_std"], lives[1].out_std) and "opt" in trainer_state
    assert process.timers.seconds["reward_fit_background"] > 0
    assert process.submit(store, clips) and process.wait() is process.stats and process.fits == 2
    process._process.kill()  # a fitting process that dies ends the run, with what happened
    process._process.join()
    with pytest.raises(FitFailed, match="fitting process ended unexpectedly"):
        process.submit(store, clips)
    process.close()
    bad = make_reward_model(gym.spaces.Box(-9, 9, (4,)), gym.spaces.Box(-1, 1, (2,)), cfg)  # clips have 3 obs
    failing = ProcessFitter(bad, RewardTrainer(copy.deepcopy(bad), cfg, rng), opener)
    failing.submit(store, [])
    with pytest.raises(FitFailed, match="background fit failed: RuntimeError"):
        failing.wait()
    failing.close()
    assert not [p for p in mp.active_children() if p.name == "prefrl-reward-fit"]


def test_a_run_fitting_in_a_process_learns_what_the_thread_learns_and_leaves_no_process(tmp_path):
    finals = []
    for process in (False, True):
        out = tmp_path / f"run-{process}"
        train(TrainConfig(env="prefrl/PointReach-v0", steps=8192, labels=40, out=out, video_steps=0,
                          eval_episodes=2, progress=False, reward_model=RewardModelConfig(process=process)))
        with (out / "metrics.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert float(rows[-1]["t_reward_fit_background"]) > 0 and int(rows[-1]["labels"]) == 40
        finals.append(float(rows[-1]["true_return"]))
        assert (out / "reward_model").exists()
    assert finals[0] == pytest.approx(finals[1], abs=1e-6)  # same fits, taken between the same rollouts here
    assert not [p for p in mp.active_children() if p.name == "prefrl-reward-fit"]


def test_stage_timers_add_up_to_the_wall_time_and_reach_the_report(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(env="prefrl/PointReach-v0", steps=8192, labels=30, out=out, update_every=2048,
                      video_steps=0, eval_episodes=1, progress=False))
    with (out / "metrics.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    stages = {k: float(v) for k, v in last.items() if k.startswith("t_") and k != "t_reward_fit_background"}
    assert stages["t_policy_update"] > 0 and stages["t_env"] > 0 and stages["t_reward_inference"] > 0
    assert 0.7 * float(last["wall_s"]) < sum(stages.values()) < 1.1 * float(last["wall_s"]) + 0.5
    report = (out / "report.md").read_text()
    assert "## Where the time went" in report and "policy update" in report


def test_a_scripted_teacher_at_a_persons_pace_is_waited_for(tmp_path):
    out = tmp_path / "run"
    result = train(TrainConfig(env="prefrl/PointReach-v0", steps=8192, labels=16, out=out, update_every=2048,
                               video_steps=0, eval_episodes=1, progress=False,
                               teacher_params=TeacherConfig(seconds_per_label=0.1)))
    store = PreferenceStore(out / "prefs.sqlite")
    assert result.labels == 16 == store.count_queries("asked") and store.count_pending() == 0
    waits = [lab.created - lab.shown for lab in store.labels() if lab.shown is not None]
    assert len(waits) == 16 and np.median(waits) >= 0.1 and {lab.labeler for lab in store.labels()} == {"oracle-paced"}
    config = TrainConfig.from_json((out / "config.json").read_text())
    assert config.queries.clip_length == 30  # a person's clip: 1.5 s of PointReach at 20 steps a second


def test_a_paced_teacher_that_dies_fails_the_run_instead_of_hanging_and_resume_goes_on(tmp_path, monkeypatch):
    """Session 31: a paced teacher's thread died (a CPython error reading a clip) and the run waited for its answers
    for ever. Now the wait notices, the run fails with one error, the answers given are kept, and --resume goes on."""
    out = tmp_path / "run"
    cfg = TrainConfig(env="prefrl/PointReach-v0", steps=8192, labels=16, out=out, update_every=2048, video_steps=0,
                      eval_episodes=1, progress=False, teacher_params=TeacherConfig(seconds_per_label=0.05))
    answer = ScriptedTeacher.answer
    calls = []

    def dies_at_the_fourth(self: ScriptedTeacher, left: Clip, right: Clip) -> Answer:
        calls.append(1)
        if len(calls) > 3:
            raise SystemError("AST constructor recursion depth mismatch (before=33, after=53)")
        return answer(self, left, right)

    monkeypatch.setattr(ScriptedTeacher, "answer", dies_at_the_fourth)
    with pytest.raises(PrefrlError, match="paced teacher stopped answering .SystemError.*add --resume"):
        train(cfg)
    assert PreferenceStore(out / "prefs.sqlite").count_labels() == 3  # nothing given is lost
    monkeypatch.setattr(ScriptedTeacher, "answer", answer)
    assert train(dataclasses.replace(cfg, resume=True)).labels == 16


def test_the_report_says_whether_ending_an_episode_costs_and_whether_the_cap_set_that(tmp_path):
    run = RunDir(tmp_path)
    summary = {"env_steps": 10, "labels": 4, "final_true_return": 1.0, "random_return": 0.0, "wall_s": 1.0}
    for learned, received, says in ((-3.2, -3.2, "is -3.20 (live steps: mean 0, std 1, 1st percentile -2.10 over "
                                     "recent behaviour): ending an episode costs"),
                                    (0.4, -2.1, "is +0.40 (live steps: mean 0, std 1, 1st percentile -2.10 over "
                                     "recent behaviour), capped at -2.10 (the 1st percentile"),
                                    (0.4, 0.4, "is +0.40 (live steps: mean 0, std 1 over recent behaviour): ending "
                                     "an episode does not cost")):
        run.write_state({"summary": {**summary, "absorbing_reward": received, "absorbing_learned": learned,
                                     "live_floor": -2.1 if received < 0 else math.inf}})
        write_report(run, "t")
        assert says in (tmp_path / "report.md").read_text()
