"""Checks of the backflip variants in backflip_variants.py (research, not the product; not in `make test`).

    cd research/backflip && python -m pytest -q test_variants.py
"""

import math
from pathlib import Path

import numpy as np
import pytest
from backflip_variants import every_turn_pays  # this folder: the tests run from it

from prefrl.core.data import Clip
from prefrl.envs.backflip import HOPPER_DT
from prefrl.gym.environments import make_env


def _hopper_clip(angles: np.ndarray, heights: np.ndarray) -> Clip:
    """Hopper states (qpos|qvel) following a scripted torso angle and height."""
    t = len(angles)
    qpos = np.zeros((t, 6))
    qpos[:, 1], qpos[:, 2] = heights, angles
    qvel = np.zeros((t, 6))
    qvel[:, 2] = np.gradient(angles) / HOPPER_DT
    return Clip(obs=np.zeros((t, 11)), acts=np.zeros((t, 3)), true_rewards=np.zeros(t),
                states=np.concatenate([qpos, qvel], axis=1))


def test_backflip_variant_env_cuts_episodes_once_the_hopper_has_lain_for_50_steps(monkeypatch):
    """backflip_variants.py, as README.md here runs it: by factory path from this folder."""
    monkeypatch.chdir(Path(__file__).parent)
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
    np.testing.assert_allclose(standing_bonus_from_the_start(landed)[100:], every_turn_pays(landed)[100:])  # 1 turn


def test_backflip_variant_fast_turns_pays_nothing_for_a_slow_creep_over(monkeypatch):
    """Only the part of a step's backward turn above 0.03 rad is paid (README.md, fourth round)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))
    from backflip_variants import fast_turns

    slow = _hopper_clip(np.linspace(0, -math.pi, 200), np.full(200, 1.0))  # 0.016 rad a step
    fast = _hopper_clip(np.linspace(0, -math.pi, 40), np.full(40, 1.0))  # 0.08 rad a step
    assert every_turn_pays(slow)[1:-1].sum() > 3 and np.allclose(fast_turns(slow)[1:-1], 0.0)
    np.testing.assert_allclose(fast_turns(fast)[1:-1], every_turn_pays(fast)[1:-1] - 0.03)


def test_backflip_variant_landing_pays_five_times_more_for_standing_after_a_flip(monkeypatch):
    """README.md, fifth round: `every_turn_pays`, but standing after k turns pays 0.1 k a step."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))
    from backflip_variants import landing_pays

    creep = _hopper_clip(np.linspace(0, -math.pi, 200), np.full(200, 1.0))  # over onto the head: no turn completed
    np.testing.assert_allclose(landing_pays(creep), every_turn_pays(creep))
    landed = _hopper_clip(np.r_[np.linspace(0, -2 * math.pi, 100), np.full(60, -2 * math.pi)], np.full(160, 1.25))
    np.testing.assert_allclose(landing_pays(landed)[101:], 0.1)
    np.testing.assert_allclose(every_turn_pays(landed)[101:], 0.02)
    assert landing_pays(landed).sum() > every_turn_pays(landed).sum() + 4


def test_backflip_variant_env_observes_the_torso_angle_as_sine_cosine_and_turns(monkeypatch):
    """README.md, fifth round: the reward model sees no unwrapped angle to extrapolate."""
    monkeypatch.chdir(Path(__file__).parent)
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
    """README.md, seventh and ninth rounds: hanging upside down costs 0.05 a step (`no_hang`), resting
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
    """README.md, tenth round: a fast throw backwards earns twice what `no_hang` pays for it, so a failed
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


def test_backflip_variant_later_turns_pay_less_pays_the_first_throw_and_not_the_tumble(monkeypatch):
    """A throw in the first turn earns what `attempts_pay` pays; the same turn after one and after three whole turns
    earns `no_hang`'s rate and half of it; standing after turns is scored as `no_hang` scores it."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from backflip_variants import attempts_pay, later_turns_pay_less, no_hang

    throw = _hopper_clip(np.linspace(0, -math.pi, 40), np.full(40, 1.5))
    np.testing.assert_allclose(later_turns_pay_less(throw), attempts_pay(throw))
    second = _hopper_clip(np.linspace(-2.5 * math.pi, -3.5 * math.pi, 40), np.full(40, 1.5))  # 1 whole turn done
    np.testing.assert_allclose(later_turns_pay_less(second), no_hang(second))
    fourth = _hopper_clip(np.linspace(-6.5 * math.pi, -7.5 * math.pi, 40), np.full(40, 1.5))  # 3 whole turns done
    np.testing.assert_allclose(later_turns_pay_less(fourth)[1:-1], 0.5 * no_hang(fourth)[1:-1])
    stand = _hopper_clip(np.full(60, -2 * math.pi), np.full(60, 1.25))
    np.testing.assert_allclose(later_turns_pay_less(stand), no_hang(stand))


def test_backflip_variant_flip_progress_pays_each_pose_of_the_flip_more_and_a_tumble_less(monkeypatch):
    """README.md, twelfth round: the teacher judges how far through one flip the hopper has got."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))
    from backflip_variants import flip_progress

    poses = [0.0, -math.pi / 2, -math.pi, -3 * math.pi / 2]  # upright, on its back, on its head, face down
    held = [flip_progress(_hopper_clip(np.full(50, a), np.full(50, 0.3))).sum() for a in poses]
    assert held == sorted(held) and held[0] == 0.0
    landed = _hopper_clip(np.r_[np.linspace(0, -2 * math.pi - 0.25, 100), np.full(100, -2 * math.pi - 0.25)],
                          np.full(200, 1.25))
    short = _hopper_clip(np.r_[np.linspace(0, -2 * math.pi + 0.2, 100), np.full(100, -2 * math.pi + 0.2)],
                         np.full(200, 1.25))  # stands up again, but the scorer counts no flip: not paid as landed
    assert flip_progress(short)[100:].max() < 1.0
    tumble = _hopper_clip(np.linspace(0, -6 * math.pi, 200), np.full(200, 1.25))  # three turns, never stopping
    np.testing.assert_allclose(flip_progress(landed)[100:], 2.0)  # a whole turn and standing after it
    assert flip_progress(landed).sum() > 2 * flip_progress(tumble).sum()
    face_down = _hopper_clip(np.full(200, -3 * math.pi / 2), np.full(200, 0.3))
    assert flip_progress(landed).sum() > flip_progress(face_down).sum() + 50  # more than lying face down as long


def test_backflip_variant_flip_then_rise_pays_getting_up_after_the_turn_only(monkeypatch):
    """README.md, twelfth round: height pays once the hopper is past face down, not before the flip."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))
    from backflip_variants import flip_progress, flip_then_rise, flip_then_stand

    start = _hopper_clip(np.zeros(50), np.full(50, 1.25))
    np.testing.assert_allclose(flip_then_rise(start), flip_progress(start))  # standing before the flip: nothing
    angle = np.full(50, -2 * math.pi - 0.1)
    sit, crouch = _hopper_clip(angle, np.full(50, 0.25)), _hopper_clip(angle, np.full(50, 0.7))
    stand = _hopper_clip(angle, np.full(50, 1.25))
    gains = [(flip_then_rise(c) - flip_progress(c)).mean() for c in (sit, crouch, stand)]
    np.testing.assert_allclose(gains, [0.0, 0.5, 1.0])
    assert flip_then_rise(stand).sum() > flip_then_rise(crouch).sum() > flip_then_rise(sit).sum()
    sit_gain = (flip_then_stand(sit) - flip_progress(sit)).mean()  # from the floor up: sitting shows the way up
    np.testing.assert_allclose(sit_gain, 0.25 / 1.1)
    np.testing.assert_allclose(flip_then_stand(start), flip_progress(start))


def test_one_flip_pays_the_first_turn_and_the_landing_but_not_a_second_turn():
    from backflip_variants import LANDED_STANDING, one_flip

    turn = np.linspace(0, -2 * math.pi, 100)  # 0.063 rad a step, torso up at 1.0 m
    flip_and_stand = _hopper_clip(np.r_[turn, np.full(100, -2 * math.pi)], np.r_[np.full(100, 1.0), np.full(100, 1.25)])
    tumble = _hopper_clip(np.r_[turn, turn - 2 * math.pi], np.full(200, 0.7))  # up, never standing
    score_flip, score_tumble = one_flip(flip_and_stand), one_flip(tumble)
    np.testing.assert_allclose(score_flip[:90], every_turn_pays(flip_and_stand)[:90])  # the turn: paid alike
    np.testing.assert_allclose(score_flip[101:], LANDED_STANDING)  # standing after it
    assert np.allclose(score_tumble[101:], 0.0) and every_turn_pays(tumble)[101:].sum() > 6  # a second turn: nothing
    assert score_flip.sum() > score_tumble.sum() + 9
    lying_after = _hopper_clip(np.r_[turn, np.full(100, -2 * math.pi)], np.r_[np.full(100, 1.0), np.full(100, 0.3)])
    np.testing.assert_allclose(one_flip(lying_after)[101:], -0.05)


def test_one_flip_or_nothing_charges_standing_before_the_flip_as_lying():
    from backflip_variants import LANDED_STANDING, one_flip, one_flip_or_nothing

    still = _hopper_clip(np.zeros(50), np.full(50, 1.25))
    lying_still = _hopper_clip(np.zeros(50), np.full(50, 0.3))
    np.testing.assert_allclose(one_flip_or_nothing(still), one_flip_or_nothing(lying_still))  # both -0.05
    np.testing.assert_allclose(one_flip_or_nothing(still), -0.05)
    turn = np.linspace(0, -2 * math.pi, 100)
    landed = _hopper_clip(np.r_[turn, np.full(100, -2 * math.pi)], np.r_[np.full(100, 0.7), np.full(100, 1.25)])
    np.testing.assert_allclose(one_flip_or_nothing(landed)[101:], LANDED_STANDING)  # after the flip: as one_flip
    np.testing.assert_allclose(one_flip_or_nothing(landed)[5:90], one_flip(landed)[5:90] - 0.05)
    assert one_flip_or_nothing(landed)[5:90].min() > 0  # the fast turn pays more than its charge


def test_reference_starts_start_at_recorded_flip_states_shifted_into_the_first_turn(monkeypatch, tmp_path):
    """flip_segments keeps each landed flip with its angle shifted by whole turns, save_flips saves
    them with which flip each row is, and hopper_reference_starts starts that share of episodes at one of the saved
    states."""
    from backflip_variants import hopper_reference_starts
    from reference_states import save_flips

    from prefrl.envs.backflip import flip_segments

    monkeypatch.chdir(Path(__file__).parent)
    t = 300  # stand, a whole backward turn at 1.5 m, stand; then a second turn and stand
    turn = np.concatenate([np.zeros(40), np.linspace(0, -2 * math.pi, 60), np.full(60, -2 * math.pi)])
    angles = np.concatenate([turn, turn[40:] - 2 * math.pi, np.full(t - 2 * len(turn) + 40, -4 * math.pi)])
    heights = np.where(np.isclose(angles % (2 * math.pi), 0) | np.isclose(angles % (2 * math.pi), 2 * math.pi),
                       1.25, 1.5)
    states = _hopper_clip(angles, heights).states
    segments = flip_segments(states, before=10, after=5)
    assert len(segments) == 2
    for part in segments:  # each starts standing at the first turn's angle and ends a whole turn later
        assert abs(part[0, 2]) < 0.5 and abs(part[-1, 2] + 2 * math.pi) < 0.5

    saved = np.concatenate(segments)
    save_flips(segments, tmp_path / "ref.npz")
    assert np.load(tmp_path / "ref.npz")["flip"].tolist() == [0] * len(segments[0]) + [1] * len(segments[1])
    env = hopper_reference_starts(1.0, reference=str(tmp_path / "ref.npz"))
    starts = [env.reset(seed=k) and env.unwrapped.data.qpos.copy() for k in range(20)]
    rows = {tuple(np.round(r, 6)) for r in saved[:, :6]}
    assert all(tuple(np.round(q, 6)) in rows for q in starts)  # every start is a saved state
    assert len({tuple(q) for q in starts}) > 10  # drawn, not one state
    plain = hopper_reference_starts(0.0)
    plain.reset(seed=0)
    assert abs(plain.unwrapped.data.qpos[2]) < 0.1  # share 0: the env as registered


def test_preferred_starts_start_at_states_of_the_clips_the_teacher_preferred(monkeypatch, tmp_path):
    """hopper_preferred_starts reads the run's store: starts come from the winner of each labelled pair, none from
    the loser or an equal answer, and with no store yet every episode starts as the env starts it."""
    from backflip_variants import hopper_preferred_starts

    from prefrl.core.data import Answer
    from prefrl.core.store.sqlite import PreferenceStore

    monkeypatch.chdir(Path(__file__).parent)
    path = tmp_path / "prefs.sqlite"
    env = hopper_preferred_starts(1.0, store=str(path))
    env.reset(seed=0)
    assert abs(env.unwrapped.data.qpos[2]) < 0.1  # no store yet: a standing start

    def clip(angle: float) -> Clip:
        return _hopper_clip(np.full(30, angle) + np.linspace(0, 0.01, 30), np.full(30, 1.3))

    store = PreferenceStore(path, env_id="prefrl/HopperBackflip-v0")
    won, lost, tied = store.add_clip(clip(-2.0)), store.add_clip(clip(-1.0)), store.add_clip(clip(-3.0))
    store.add_label(store.add_query(lost, won, env_step=0), Answer.RIGHT, labeler="t")
    store.add_label(store.add_query(tied, lost, env_step=0), Answer.EQUAL, labeler="t")
    env = hopper_preferred_starts(1.0, store=str(path))
    angles = [env.reset(seed=k) and env.unwrapped.data.qpos[2] for k in range(12)]
    assert all(-2.0 <= a <= -1.99 for a in angles)  # the winner's states only
    assert len(set(angles)) > 3


def test_open_loop_search_can_score_its_episodes_by_a_learned_reward_instead_of_the_score():
    from open_loop_flip import HORIZON, play, score

    env = make_env("prefrl/HopperBackflip-v0")
    knots = np.full((4, 3), 0.5)
    clip = play(env, knots, steps=40)
    assert clip.obs.shape == (HORIZON, *env.observation_space.shape) and clip.states.shape == (HORIZON, 12)
    assert np.allclose(clip.acts[:40], 0.5) and np.allclose(clip.acts[40:], 0.0)  # the torques, zero after
    again = play(env, knots, steps=40)
    assert np.allclose(clip.obs, again.obs)  # each candidate plays from the same start
    # the learned reward replaces the score: here one that pays the first joint's torque, which the score does not see
    learned = score(clip, jump_pay=0.3, learned=lambda c: c.acts[:, 0])
    assert learned == 0.5 * 40
    assert score(clip, jump_pay=0.3) != learned


def test_fit_reward_fits_a_model_on_an_imported_store_that_reward_from_then_loads(tmp_path):
    """fit_reward.py: the model a run would have had after its first N labels, saved where --reward-from reads it;
    here labels that prefer the torso turned further back teach a model that pays the turn."""
    from fit_reward import fit

    from prefrl.checkpoint import load_reward_model
    from prefrl.config import RewardModelConfig, TrainConfig
    from prefrl.core.data import Answer
    from prefrl.core.store.sqlite import PreferenceStore
    from prefrl.errors import PrefrlError

    source, run = tmp_path / "source", tmp_path / "half"
    source.mkdir()
    run.mkdir()
    cfg = TrainConfig(env="prefrl/HopperBackflip-v0", seed=3, reward_model=RewardModelConfig(members=2, hidden=16))
    (source / "config.json").write_text(cfg.to_json())
    with pytest.raises(PrefrlError, match="prefrl import"):
        fit(run, source, fits=1)
    rng = np.random.default_rng(0)

    def clip(turn: float) -> Clip:
        obs = rng.normal(0.0, 0.1, (20, 11))
        obs[:, 1] = turn  # the torso's angle
        return Clip(obs=obs, acts=np.zeros((20, 3)), true_rewards=np.zeros(20))

    store = PreferenceStore(run / "prefs.sqlite", env_id="prefrl/HopperBackflip-v0")
    for _ in range(60):
        a, b = rng.uniform(-3.0, 0.0, 2)
        left, right = store.add_clip(clip(a)), store.add_clip(clip(b))
        store.add_label(store.add_query(left, right, env_step=0), Answer.LEFT if a < b else Answer.RIGHT, "t")
    store.close()
    stats = fit(run, source, fits=3)
    assert len(stats) == 3 and stats[-1].train_loss < stats[0].train_loss
    model = load_reward_model(run, *_spaces())
    turned, upright = np.zeros((1, 11), np.float32), np.zeros((1, 11), np.float32)
    turned[0, 1] = -2.5
    assert model.reward(turned, np.zeros((1, 3), np.float32)) > model.reward(upright, np.zeros((1, 3), np.float32))


def _spaces():
    env = make_env("prefrl/HopperBackflip-v0")
    spaces = env.observation_space, env.action_space
    env.close()
    return spaces
