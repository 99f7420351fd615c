"""Learning-signal tests: the loop must actually learn. The fast one stays in the default suite."""

import math

import numpy as np
import pytest

from prefrl import loop
from prefrl.checkpoint import load_reward_model
from prefrl.config import TrainConfig
from prefrl.gym.environments import make_env
from prefrl.loop import train
from prefrl.run_dir import RunDir


def _random_policy_return(env_id: str, episodes: int = 20) -> float:
    env = make_env(env_id)
    env.action_space.seed(0)
    total = []
    for k in range(episodes):
        env.reset(seed=1000 + k)
        ret, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            ret += float(r)
            done = term or trunc
        total.append(ret)
    return float(np.mean(total))


def test_preference_trained_ppo_beats_random_on_point_reach_and_a_new_agent_learns_on_its_model_held_fixed(
        tmp_path, monkeypatch):
    run = tmp_path / "run"
    before_retrain: list[bytes] = []  # the run's saved model as the second phase starts

    def retrain(*args):
        before_retrain.append((run / "reward_model" / "model.pt").read_bytes())
        return real_retrain(*args)

    real_retrain = loop._retrain
    monkeypatch.setattr(loop, "_retrain", retrain)
    result = train(TrainConfig(env="prefrl/PointReach-v0", steps=24_000, labels=150, seed=1, retrain_steps=24_000,
                               out=run, video_steps=20, eval_episodes=20, progress=False))
    random_return = _random_policy_return("prefrl/PointReach-v0")
    # random wanders ~ -45; reaching and staying near the goal is ~ -5. "Clearly beats": more than halfway.
    assert result.final_true_return > random_return / 2, (result.final_true_return, random_return)
    assert result.labels >= 140
    for name in ["config.json", "prefs.sqlite", "metrics.csv", "report.png", "agent.mp4", "state.json",
                 "agent/ppo.zip", "reward_model/model.pt"]:
        assert (run / name).exists(), name
    assert any((run / "tb").iterdir())

    # --retrain-steps: then a new agent, trained from scratch on the run's final reward model held fixed, learns
    # too, in RUN/retrain, and asks for no labels.
    fixed = result.retrain
    assert fixed is not None and fixed.run_dir == run / "retrain"
    assert fixed.final_true_return > random_return / 2, (fixed.final_true_return, random_return)
    assert fixed.labels == 0 and not (run / "retrain" / "prefs.sqlite").exists()
    summaries = [RunDir(path).read_state()["summary"] for path in (run, run / "retrain")]
    assert [(s["teacher"], s["reward_from"]) for s in summaries] == [("oracle", None), (None, str(run))]
    assert summaries[0]["retrain"]["final_true_return"] == fixed.final_true_return
    assert f"new agent trained {fixed.env_steps} env steps from scratch" in (run / "report.md").read_text()
    paid = [r for r in RunDir(run / "retrain").read_metrics() if not math.isnan(r["predicted_return"])]
    assert paid and all(r["predicted_return"] != r["true_return"] for r in paid)  # the model's reward, not the env's
    # held fixed: training on it left the run's saved model as it was
    assert before_retrain == [(run / "reward_model" / "model.pt").read_bytes()]

    # Resumed once both phases are done, it trains neither again and leaves the saved model as it was.
    saved = before_retrain[0]
    rows = [len(RunDir(path).read_metrics()) for path in (run, run / "retrain")]
    again = train(TrainConfig(out=run, resume=True, progress=False))
    assert again.retrain is not None and again.retrain.env_steps == fixed.env_steps >= 24_000
    assert [len(RunDir(path).read_metrics()) for path in (run, run / "retrain")] == rows
    assert (run / "reward_model" / "model.pt").read_bytes() == saved


@pytest.mark.slow
def test_halfcheetah_preferences_reach_80_percent_of_true_reward(tmp_path):
    from prefrl.interfaces.demo import run_demo

    run_demo(TrainConfig(env="HalfCheetah-v5", steps=200_000, labels=700, seed=0, out=tmp_path, progress=False))
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ratio_preferences_to_true"] >= 0.8, summary


def test_absorbing_state_teaches_an_agent_to_stay_alive(tmp_path):
    """On the ledge the only thing that matters is not terminating. With the absorbing state the labels teach the
    model that ending the episode is worse than any step, and the agent lasts the whole 100-step episode on every
    seed. (Without it a zero-mean reward gives survival no value of its own: measured, 5.6 to 100 by seed.)"""
    random_return = _random_policy_return("tests.factories:make_ledge")
    assert random_return < 60
    for seed in (0, 1):
        out = tmp_path / f"seed{seed}"
        result = train(TrainConfig(env="tests.factories:make_ledge", steps=6_000, labels=80, seed=seed, out=out,
                                   video_steps=0, eval_episodes=20, progress=False))
        assert result.final_true_return >= 90, (seed, result.final_true_return, random_return)
        env = make_env("tests.factories:make_ledge")
        model = load_reward_model(out, env.observation_space, env.action_space)
        assert model.absorbing_reward() < -1.0, model.absorbing_reward()  # ending is worse than a typical step
