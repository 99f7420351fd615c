"""Shipped environments, their scorers, and plugging in an env of one's own."""

import math
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from prefrl.check import check_environment
from prefrl.cli import main
from prefrl.config import TrainConfig
from prefrl.data import Clip
from prefrl.environments import make_env
from prefrl.envs.backflip import (
    CHEETAH_NQ,
    HOPPER_DT,
    HOPPER_NQ,
    backflip_score,
    count_backflips,
    front_foot_height,
    landed_backflips,
    one_leg_score,
)
from prefrl.errors import PrefrlError
from prefrl.loop import train

SHIPPED = ["prefrl/PointReach-v0", "prefrl/HopperBackflip-v0", "prefrl/HalfCheetahOneLeg-v0"]


@pytest.mark.parametrize("env_id", SHIPPED)
def test_shipped_envs_pass_the_checker_and_render(env_id):
    env = make_env(env_id, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=True)  # its render check opens a human (GLFW) window
    env.reset(seed=0)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    report = check_environment(env_id)
    assert report.usable and report.human_ok and report.restorable, str(report)


def test_no_reward_tasks_do_not_reward_the_trick():
    env = make_env("prefrl/HopperBackflip-v0")
    env.reset(seed=0)
    for _ in range(300):  # falls over and lies there: no termination, and only the control cost as reward
        _, r, terminated, _, _ = env.step(env.action_space.sample())
        assert not terminated and r <= 0
    assert env.unwrapped.metadata["prefrl_no_reward"]


def _hopper_clip(angles: np.ndarray, heights: np.ndarray) -> Clip:
    """Hopper states (qpos|qvel) following a scripted torso angle and height."""
    t = len(angles)
    qpos = np.zeros((t, 6))
    qpos[:, 1], qpos[:, 2] = heights, angles
    qvel = np.zeros((t, 6))
    qvel[:, 2] = np.gradient(angles) / HOPPER_DT
    return Clip(obs=np.zeros((t, 11)), acts=np.zeros((t, 3)), true_rewards=np.zeros(t),
                states=np.concatenate([qpos, qvel], axis=1))


def test_backflip_scorer_counts_landed_backward_rotations():
    turn = np.linspace(0, -2 * math.pi, 100)
    landed = _hopper_clip(np.r_[turn, np.full(60, -2 * math.pi)], np.r_[np.full(100, 1.5), np.full(60, 1.25)])
    assert count_backflips(landed) == 1
    stand = np.full(60, -2 * math.pi)
    two = _hopper_clip(np.r_[turn, stand, turn - 2 * math.pi, stand - 2 * math.pi], np.full(320, 1.25))
    assert count_backflips(two) == 2
    assert landed_backflips(two.states[:, :HOPPER_NQ]) == [(1, 99), (161, 259)]  # (began, completed)
    no_landing_between = _hopper_clip(np.r_[turn, turn - 2 * math.pi, stand - 2 * math.pi], np.full(260, 1.25))
    assert count_backflips(no_landing_between) == 1
    forward = _hopper_clip(np.r_[-turn, np.full(60, 2 * math.pi)], np.full(160, 1.25))
    assert count_backflips(forward) == 0
    crashed = _hopper_clip(np.r_[turn, np.full(60, -2 * math.pi)], np.r_[np.full(100, 1.5), np.full(60, 0.3)])
    assert count_backflips(crashed) == 0
    # the per-step score the teacher sums prefers a flip in the air, then standing still, then turning
    # forwards; rolling backwards on the ground pays nothing and lying there costs
    still = _hopper_clip(np.zeros(160), np.full(160, 1.25))
    rolled = _hopper_clip(np.r_[turn, np.full(60, -2 * math.pi)], np.full(160, 0.3))
    scores = [backflip_score(c).sum() for c in (landed, still, forward, rolled)]
    assert scores == sorted(scores, reverse=True) and scores[3] == pytest.approx(-0.05 * 160)
    # one full backward turn (2*pi) plus the standing bonus for at most every step
    assert 2 * math.pi + 0.02 * 60 - 0.1 < scores[0] < 2 * math.pi + 0.02 * 160
    # standing pays only after whole backward turns, 0.02 a step for each; a headstand counts as lying
    assert backflip_score(still).max() == 0
    for turns in (1, 2):
        after = _hopper_clip(np.full(10, -2 * math.pi * turns), np.full(10, 1.25))
        np.testing.assert_allclose(backflip_score(after), 0.02 * turns)
    headstand = _hopper_clip(np.full(10, -math.pi), np.full(10, 0.6))
    crouch = _hopper_clip(np.zeros(10), np.full(10, 0.6))
    np.testing.assert_allclose(backflip_score(headstand), -0.05)
    np.testing.assert_allclose(backflip_score(crouch), 0.0)


def test_one_leg_scorer_rewards_forward_motion_with_the_front_foot_up():
    env = make_env("prefrl/HalfCheetahOneLeg-v0")
    env.reset(seed=0)
    for _ in range(50):  # let it settle on the floor
        env.step(np.zeros(6))
    standing = env.unwrapped.data.qpos.copy()
    lifted = standing.copy()
    lifted[6] = -1.0  # front thigh swung back: the front foot leaves the ground
    assert front_foot_height(np.stack([standing]))[0] < 0.15 < front_foot_height(np.stack([lifted]))[0]

    def clip(qpos: np.ndarray) -> Clip:
        qvel = np.zeros((10, CHEETAH_NQ))
        qvel[:, 0] = 2.0
        return Clip(obs=np.zeros((10, 17)), acts=np.zeros((10, 6)), true_rewards=np.zeros(10),
                    states=np.concatenate([np.tile(qpos, (10, 1)), qvel], axis=1))

    assert one_leg_score(clip(lifted)).sum() > 0 > one_leg_score(clip(standing)).sum()


def test_an_env_defined_in_the_tests_trains_by_factory_path(tmp_path):
    result = train(TrainConfig(env="tests.factories:make_corridor", steps=8_000, labels=60, out=tmp_path / "run",
                               video_steps=10, eval_episodes=5, progress=False,
                               teacher_score="tests.factories:corridor_score"))
    # the scripted score asks for the left end (the env's own reward would say right). With a scorer, the final
    # evaluation reports the scorer's episode score: a random walk scores ~0, the left end ~+30 over 40 steps
    assert result.labels == 60 and result.final_true_return > 10
    assert (tmp_path / "run" / "agent.mp4").exists()


def test_an_env_without_rgb_rendering_cannot_be_labelled_by_a_person(tmp_path):
    with pytest.raises(PrefrlError, match="cannot render rgb_array frames, so a person cannot see its clips"):
        train(TrainConfig(env="tests.factories:make_blind", teacher="human", window=False, out=tmp_path / "r"))


def test_a_no_reward_env_needs_a_scorer(tmp_path):
    with pytest.raises(PrefrlError, match="has no reward for its task.*--teacher-score"):
        train(TrainConfig(env="tests.factories:make_blind_and_rewardless", out=tmp_path / "r"))


def test_check_env_command_reports_what_prefrl_will_do(capsys):
    assert main(["check-env", "tests.factories:make_corridor"]) == 0
    out = capsys.readouterr().out
    assert "Discrete" in out and "frames are recorded while acting" in out and "ready for prefrl" in out
    assert main(["check-env", "tests.factories:make_blind"]) == 0
    assert "rgb_array rendering failed" in capsys.readouterr().out
    assert main(["check-env", "tests.factories:not_an_env"]) == 2


def test_backflip_variant_env_cuts_episodes_once_the_hopper_has_lain_for_50_steps(monkeypatch):
    """scripts/backflip_variants.py, as docs/backflip.md runs it: by factory path from the scripts folder."""
    monkeypatch.chdir(Path(__file__).parents[1] / "scripts")
    env = make_env("backflip_variants:hopper_cut_when_lying")
    assert env.unwrapped.metadata["prefrl_no_reward"]  # the shipped env's score comes with it
    env.reset(seed=0)
    env.action_space.seed(0)
    heights = []
    for _ in range(1000):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        heights.append(env.unwrapped.data.qpos[1])
        if terminated or truncated:
            break
    assert truncated and not terminated and len(heights) < 1000  # cut, not failed, well before the time limit
    assert max(heights[-50:]) < 0.5 and min(heights[:5]) > 0.5
    # importable from the scripts folder, as the docs run them
    from backflip_variants import smaller_standing_bonus, standing_bonus_from_the_start

    still = _hopper_clip(np.zeros(40), np.full(40, 1.25))  # before any flip: the old score paid standing
    np.testing.assert_allclose(standing_bonus_from_the_start(still), 0.02)
    np.testing.assert_allclose(smaller_standing_bonus(still), 0.01)
    landed = _hopper_clip(np.r_[np.linspace(0, -2 * math.pi, 100), np.full(60, -2 * math.pi)], np.full(160, 1.25))
    np.testing.assert_allclose(standing_bonus_from_the_start(landed)[100:], backflip_score(landed)[100:])  # 1 turn


def test_backflip_variant_fast_turns_pays_nothing_for_a_slow_creep_over(monkeypatch):
    """Only the part of a step's backward turn above 0.03 rad is paid (docs/backflip.md, fourth round)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))
    from backflip_variants import fast_turns

    slow = _hopper_clip(np.linspace(0, -math.pi, 200), np.full(200, 1.0))  # 0.016 rad a step
    fast = _hopper_clip(np.linspace(0, -math.pi, 40), np.full(40, 1.0))  # 0.08 rad a step
    assert backflip_score(slow)[1:-1].sum() > 3 and np.allclose(fast_turns(slow)[1:-1], 0.0)
    np.testing.assert_allclose(fast_turns(fast)[1:-1], backflip_score(fast)[1:-1] - 0.03)


def test_backflip_variant_landing_pays_five_times_more_for_standing_after_a_flip(monkeypatch):
    """docs/backflip.md, fifth round: the score as shipped, but standing after k turns pays 0.1 k a step."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))
    from backflip_variants import landing_pays

    creep = _hopper_clip(np.linspace(0, -math.pi, 200), np.full(200, 1.0))  # over onto the head: no turn completed
    np.testing.assert_allclose(landing_pays(creep), backflip_score(creep))
    landed = _hopper_clip(np.r_[np.linspace(0, -2 * math.pi, 100), np.full(60, -2 * math.pi)], np.full(160, 1.25))
    np.testing.assert_allclose(landing_pays(landed)[101:], 0.1)
    np.testing.assert_allclose(backflip_score(landed)[101:], 0.02)
    assert landing_pays(landed).sum() > backflip_score(landed).sum() + 4


def test_backflip_variant_env_observes_the_torso_angle_as_sine_cosine_and_turns(monkeypatch):
    """docs/backflip.md, fifth round: the reward model sees no unwrapped angle to extrapolate."""
    monkeypatch.chdir(Path(__file__).parents[1] / "scripts")
    env = make_env("backflip_variants:hopper_sin_cos")
    assert env.unwrapped.metadata["prefrl_score"] == "prefrl.envs.backflip:backflip_score"
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (13,) and env.observation_space.contains(obs)
    raw = np.arange(11.0)
    for angle, turns in [(0.0, 0), (-2 * math.pi - 0.3, 1), (-40.0, 5)]:
        raw[1] = angle
        seen = env.observation(raw)
        np.testing.assert_allclose(seen[:4], [0.0, math.sin(angle), math.cos(angle), turns])
        np.testing.assert_allclose(seen[4:], raw[2:])  # the rest as before


def test_backflip_variants_no_hang_and_no_rest_charge_stopping_anywhere_but_standing(monkeypatch):
    """docs/backflip.md, seventh and ninth rounds: hanging upside down costs 0.05 a step (`no_hang`), resting
    elsewhere off the ground 0.02 more (`no_rest`); standing, lying and turning fast are scored as before."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))
    from backflip_variants import landing_pays, no_hang, no_rest

    stand = _hopper_clip(np.zeros(50), np.full(50, 1.25))
    crouch = _hopper_clip(np.full(50, -0.5), np.full(50, 0.62))  # the ninth round's agents: 29 degrees, 0.62 m
    hang = _hopper_clip(np.full(50, -math.pi), np.full(50, 0.8))
    lie = _hopper_clip(np.zeros(50), np.full(50, 0.3))
    turn = _hopper_clip(np.linspace(0, -2 * math.pi, 80), np.full(80, 1.5))  # 0.08 rad a step, in the air
    for clip in (stand, lie, turn):
        np.testing.assert_allclose(no_rest(clip), landing_pays(clip))
    np.testing.assert_allclose(no_hang(hang) - landing_pays(hang), -0.05)
    np.testing.assert_allclose(no_rest(hang), no_hang(hang))  # charged once, as hanging
    np.testing.assert_allclose(no_hang(crouch), 0.0)
    np.testing.assert_allclose(no_rest(crouch), -0.02)


def test_backflip_variant_attempts_pay_doubles_the_turn_and_nothing_else(monkeypatch):
    """docs/backflip.md, tenth round: a fast throw backwards earns twice what `no_hang` pays for it, so a failed
    flip outscores a lean; lying, hanging and standing after a flip are scored as `no_hang` scores them."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))
    from backflip_variants import attempts_pay, no_hang

    turn = _hopper_clip(np.linspace(0, -math.pi, 40), np.full(40, 1.5))  # 0.08 rad a step, in the air
    np.testing.assert_allclose(attempts_pay(turn)[1:-1], 2 * no_hang(turn)[1:-1])
    assert no_hang(turn)[1:-1].min() > 0.07
    failed = _hopper_clip(np.r_[np.linspace(0, -math.pi, 40), np.full(60, -math.pi)], np.r_[np.full(40, 1.5),
                                                                                              np.full(60, 0.3)])
    np.testing.assert_allclose(attempts_pay(failed)[41:], -0.05)  # lying after it, charged in full
    for still in (_hopper_clip(np.full(50, -math.pi), np.full(50, 0.8)),  # hanging
                  _hopper_clip(np.full(60, -2 * math.pi), np.full(60, 1.25))):  # standing after a turn
        np.testing.assert_allclose(attempts_pay(still), no_hang(still))


def test_the_preference_trained_backflip_agent_in_docs_lands_a_flip(monkeypatch):
    """docs/backflip-agent is the tenth round's run (docs/backflip.md): PPO trained only on a reward model learned
    from synthetic preferences. Replayed deterministically in prefrl/HopperBackflip-v0, its full 1,000-step episode
    holds a landed backward turn. Fails if the agent no longer loads, or the physics no longer carry it round."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))
    from backflip_frames import load_agent

    from prefrl.report import episode_clips

    run = Path(__file__).parents[1] / "docs" / "backflip-agent"
    agent, outer = load_agent(run, "prefrl/HopperBackflip-v0")
    episode = next(iter(episode_clips(agent, outer, "prefrl/HopperBackflip-v0", 1, 10_000)))
    assert len(episode.obs) == 1000 and episode.states is not None
    assert len(landed_backflips(episode.states[:, :HOPPER_NQ])) >= 1
