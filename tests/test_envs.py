"""Shipped environments, their scorers, and plugging in an env of one's own."""

import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from prefrl.config import TrainConfig
from prefrl.core.data import Clip
from prefrl.envs.backflip import (
    CHEETAH_NQ,
    HOPPER_DT,
    HOPPER_NQ,
    JUMP_PAY,
    LANDED_STANDING,
    OWN_FLIPS_KEPT,
    REFERENCE_FLIPS,
    backflip_score,
    clearance,
    count_backflips,
    flip_segments,
    front_foot_height,
    landed_backflips,
    lowest_point,
    lying,
    one_leg_score,
    read_own_flips,
    reference_states,
    standing,
    whole_turns,
)
from prefrl.errors import PrefrlError
from prefrl.gym.environments import make_env, score_functions
from prefrl.interfaces.check_env import check_environment
from prefrl.interfaces.cli import main
from prefrl.loop import train
from prefrl.run_dir import RunDir
from prefrl.session import Session

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


STANDS_AT = 1.207  # the torso's height (m) once the hopper has settled on its foot


def _on_floor(angles: np.ndarray) -> Clip:
    """`_hopper_clip` with each pose lowered (or lifted) until its lowest point touches the floor."""
    high = np.full(len(angles), 2.5)
    lift = clearance(_hopper_clip(angles, high).states[:, :HOPPER_NQ])
    return _hopper_clip(angles, high - lift)


def test_backflip_scorer_counts_landed_backward_rotations():
    turn = np.linspace(0, -2 * math.pi, 100)
    landed = _hopper_clip(np.r_[turn, np.full(60, -2 * math.pi)], np.r_[np.full(100, 2.5), np.full(60, STANDS_AT)])
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
    # the per-step score the teacher sums prefers a flip in the air and a landing, then standing still, then
    # turning forwards on the floor; rolling backwards on the floor pays nothing
    still = _hopper_clip(np.zeros(160), np.full(160, STANDS_AT))
    forward = _on_floor(-turn)
    rolled = _on_floor(turn[:90])  # (standing up after it, the env would have folded the angle: no landing)
    scores = [backflip_score(c).sum() for c in (landed, still, forward)]
    assert scores == sorted(scores, reverse=True) and backflip_score(rolled).max() < 1e-9
    # one full backward turn in the air (2*pi), then LANDED_STANDING for each of the 60 steps standing
    turn_and_landing = backflip_score(landed, jump_pay=0).sum()
    assert 2 * math.pi + 60 * LANDED_STANDING - 0.2 < turn_and_landing < 2 * math.pi + 60 * LANDED_STANDING + 0.01
    # standing pays only after a whole backward turn, and no more after two; a headstand costs as lying does
    assert backflip_score(still).max() == 0
    for turns in (1, 2):
        after = _hopper_clip(np.full(10, -2 * math.pi * turns), np.full(10, STANDS_AT))
        np.testing.assert_allclose(backflip_score(after), LANDED_STANDING)
    headstand = _on_floor(np.full(10, -math.pi))
    hang = _hopper_clip(np.full(10, -math.pi), np.full(10, 0.9))  # upside down off the ground, not turning
    crouch = _hopper_clip(np.zeros(10), np.full(10, 0.6))
    np.testing.assert_allclose(backflip_score(headstand), -0.05)
    np.testing.assert_allclose(backflip_score(hang, jump_pay=0), -0.05)
    np.testing.assert_allclose(backflip_score(crouch), 0.0)
    # only the first turn pays: a second one in the air (never standing) earns nothing, so landing pays more
    tumble = _hopper_clip(np.r_[turn, turn - 2 * math.pi], np.full(200, 2.5))
    assert backflip_score(tumble)[:98].sum() > 6 and np.allclose(backflip_score(tumble)[101:], 0.0)
    assert scores[0] > backflip_score(tumble).sum() + 5


def test_backflip_score_pays_the_turn_only_in_the_air_and_pays_the_jump():
    half = np.linspace(0, -math.pi, 40)
    flying = _hopper_clip(half, np.full(40, 2.5))  # torso 2.5 m up: the whole body off the floor
    on_foot = _on_floor(half)  # the same turn with the body on the floor
    lift = clearance(flying.states[:, :HOPPER_NQ])
    assert lift.min() > 0.5 and np.abs(clearance(on_foot.states[:, :HOPPER_NQ])).max() < 1e-6
    assert backflip_score(flying, jump_pay=0)[1:-1].sum() > 2.5  # about pi radians, paid
    assert backflip_score(on_foot).sum() <= 0  # turning on the floor earns nothing (no jump either)
    np.testing.assert_allclose(backflip_score(flying) - backflip_score(flying, jump_pay=0), JUMP_PAY * lift)
    # the score shipped before paid the turn wherever the torso was above 0.6 m: a lean back on the foot
    lean = _on_floor(np.linspace(0, -math.pi / 3, 20))
    assert backflip_score(lean, air_only=False, jump_pay=0).sum() > 0.9 and backflip_score(lean).sum() < 1e-9


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


def _lie_down(env) -> int:
    """Steps of zero torque from reset until the episode ends (at most 1,000): the hopper topples and lies."""
    env.reset(seed=0)
    for t in range(1, 1001):
        _, _, terminated, truncated, _ = env.step(np.zeros(3))
        if terminated or truncated:
            return t
    return 1001


def test_backflip_practice_episodes_end_after_lying_while_evaluations_play_them_whole(tmp_path):
    assert _lie_down(make_env("prefrl/HopperBackflip-v0")) == 1000  # the time limit
    cut = make_env("prefrl/HopperBackflip-v0", cut_after_lying=40)
    ended = _lie_down(cut)
    assert 40 < ended < 1000  # it must first topple, then lie 40 steps in a row
    assert lying(cut.unwrapped.data.qpos[None, :HOPPER_NQ])[0]  # it ended lying
    with pytest.raises(ValueError, match="positive number of steps"):
        make_env("prefrl/HopperBackflip-v0", cut_after_lying=0)

    cfg = TrainConfig(env="prefrl/HopperBackflip-v0", train_env_kwargs={"cut_after_lying": 40}, reward="true",
                      steps=2048, out=tmp_path / "run", progress=False, eval_episodes=1, video_steps=0)
    run, cfg = RunDir.prepare(cfg)
    assert TrainConfig.from_json(cfg.to_json()).train_env_kwargs == {"cut_after_lying": 40}  # resumes with it
    with Session.open(cfg, run) as s:  # the copies the agent trains in are cut; the evaluation's env is not
        assert {e.unwrapped.cut_after_lying for e in s.wrapper.venv.envs} == {40}  # type: ignore[attr-defined]
    with pytest.raises(PrefrlError, match="cannot be made with --train-env-kwargs cut_after_lie 40.*keyword"):
        RunDir.check(TrainConfig(env="prefrl/HopperBackflip-v0", train_env_kwargs={"cut_after_lie": 40},
                                 out=tmp_path / "typo"))
    assert not (tmp_path / "typo").exists()


def test_backflip_practice_episodes_can_start_as_if_a_flip_had_landed():
    def start_angles(**kwargs):
        env = make_env("prefrl/HopperBackflip-v0", **kwargs)
        return np.array([env.reset(seed=seed)[0][1] for seed in range(40)]), env

    plain, _ = start_angles()
    assert np.abs(plain).max() < 0.1  # by default every episode starts standing, no turn made
    angles, env = start_angles(landed_starts=0.5)
    landed = angles < -6
    assert 5 < landed.sum() < 35 and np.abs(angles[~landed]).max() < 0.1
    np.testing.assert_allclose(angles[landed], plain[landed] - 2 * math.pi)  # the same pose, one turn back
    env.reset(seed=int(np.flatnonzero(landed)[0]))
    qpos, qvel = env.unwrapped.data.qpos.copy()[None], env.unwrapped.data.qvel.copy()[None]
    assert standing(qpos)[0]
    clip = Clip(obs=np.zeros((1, 11)), acts=np.zeros((1, 3)), true_rewards=np.zeros(1), states=np.c_[qpos, qvel])
    np.testing.assert_allclose(backflip_score(clip), LANDED_STANDING, atol=1e-3)  # paid as a landing
    both = make_env("prefrl/HopperBackflip-v0", landed_starts=1.0, fallen_starts=0.5)
    starts = np.array([both.reset(seed=seed)[0][1] for seed in range(40)])
    fallen = (starts > -1.95 * math.pi - 1e-9) & (starts < -1.25 * math.pi)
    assert 5 < fallen.sum() < 35 and np.allclose(starts[~fallen], -2 * math.pi, atol=0.1)  # the rest landed
    with pytest.raises(ValueError, match="share of the standing starts"):
        make_env("prefrl/HopperBackflip-v0", landed_starts=1.5)


def test_a_factory_wrapping_a_registered_env_trains_with_that_envs_ppo_preset(tmp_path):
    # research variants wrap prefrl/HopperBackflip-v0 in a factory; they once trained with SB3's 2048-step
    # rollouts instead of the env's 512 unless given --agent.n-steps
    for env, n_steps in (("tests.factories:make_wrapped_backflip", 512), ("tests.factories:make_corridor", 2048)):
        cfg = TrainConfig(env=env, reward="true", steps=2048, out=tmp_path / env.split(":")[1], progress=False,
                          eval_episodes=1, video_steps=0)
        run, cfg = RunDir.prepare(cfg)
        with Session.open(cfg, run) as s:
            assert s.agent.n_steps == s.agent_cfg.n_steps == n_steps


def test_lying_ends_a_turn_so_a_roll_on_the_floor_is_no_flip():
    env = make_env("prefrl/HopperBackflip-v0")
    env.reset(seed=0)
    hopper = env.unwrapped
    qpos, qvel = hopper.data.qpos.copy(), np.zeros(6)
    qpos[1], qpos[2] = 0.25, -1.6 * math.pi  # on its back on the floor, most of a backward turn made
    hopper.set_state(qpos, qvel)
    torso = hopper.data.xmat[1].copy()
    obs, *_ = env.step(np.zeros(3))
    angle = hopper.data.qpos[2]
    assert -math.pi < angle <= math.pi and obs[1] == pytest.approx(angle)  # counted afresh, and seen so
    np.testing.assert_allclose(hopper.data.xmat[1], torso, atol=0.05)  # the same pose: only the count changed
    qpos = hopper.init_qpos.copy()
    qpos[2] = -2 * math.pi  # standing after a whole turn: the turn stands
    hopper.set_state(qpos, qvel)
    env.step(np.zeros(3))
    assert hopper.data.qpos[2] < -6


def test_a_low_flip_in_the_air_is_not_lying_so_its_turn_goes_on():
    env = make_env("prefrl/HopperBackflip-v0")
    env.reset(seed=0)
    hopper = env.unwrapped
    qpos, qvel = np.zeros(hopper.model.nq), np.zeros(hopper.model.nv)
    qpos[2] = -1.1 * math.pi  # past upside down in a backward turn
    qpos[1] -= lowest_point(hopper.model, hopper.data, qpos)  # on the floor, on its head
    on_floor = qpos.copy()
    assert on_floor[1] < 0.65 and lying(on_floor[None])[0]
    qpos[1] += 0.3  # the same pose 0.3 m clear of the floor: the torso still below 0.65 m
    assert qpos[1] < 0.65 and not lying(qpos[None])[0]
    assert not lying(qpos[None], lift=np.array([0.3]))[0] and lying(qpos[None], lift=np.array([0.0]))[0]
    qvel[2] = -10.0  # spinning on backwards
    hopper.set_state(qpos, qvel)
    env.step(np.zeros(3))
    assert hopper.data.qpos[2] < -1.1 * math.pi  # the turn is not folded back: it goes on
    hopper.set_state(on_floor, qvel)
    env.step(np.zeros(3))
    assert abs(hopper.data.qpos[2]) <= math.pi  # on the floor it lies, and lying ends the turn


def _coast(env, steps: int) -> np.ndarray:
    """The hopper's poses (qpos) from where it is now through `steps` steps of zero torque."""
    data = env.unwrapped.data
    states = [data.qpos.copy()]
    for _ in range(steps):
        env.step(np.zeros(3))
        states.append(data.qpos.copy())
    return np.array(states)


def test_backflip_practice_episodes_can_start_in_the_air_anywhere_in_a_flip():
    env = make_env("prefrl/HopperBackflip-v0", flight_starts=1.0)
    hopper = env.unwrapped
    paid, late = 0, 0
    for seed in range(30):
        env.reset(seed=seed)
        qpos, qvel = hopper.data.qpos.copy(), hopper.data.qvel.copy()
        assert -1.8 * math.pi <= qpos[2] <= -0.1 * math.pi and -12 <= qvel[2] <= -4  # spinning backwards
        assert 0 <= qvel[1] <= 3  # rising, as after a take-off, or at the top
        assert lowest_point(hopper.model, hopper.data, qpos) > 0.15 and not lying(qpos[None])[0]  # in the air
        late += qpos[2] < -1.2 * math.pi
        q = _coast(env, 120)  # no torque: it falls, and some land on the foot with the turn whole
        paid += bool((standing(q) & (whole_turns(q[:, 2]) >= 1)).any())
    assert 5 < late < 25 and 2 <= paid <= 20
    mixed = make_env("prefrl/HopperBackflip-v0", landed_starts=0.5, flight_starts=0.5)
    angles = np.array([mixed.reset(seed=seed)[0][1] for seed in range(60)])
    kinds = [np.sum(np.abs(angles) < 0.1), np.sum(np.abs(angles + 2 * math.pi) < 0.1)]  # standing, landed
    flying = (angles >= -1.8 * math.pi) & (angles <= -0.1 * math.pi)
    assert min(kinds) > 5 and flying.sum() > 20 and sum(kinds) + flying.sum() == 60  # flight first, then landed
    with pytest.raises(ValueError, match="flight_starts is a share"):
        make_env("prefrl/HopperBackflip-v0", flight_starts=-0.1)


def test_backflip_practice_episodes_can_start_at_the_take_off():
    env = make_env("prefrl/HopperBackflip-v0", takeoff_starts=1.0)
    hopper = env.unwrapped
    left_floor, turned_on = 0, 0
    for seed in range(20):
        env.reset(seed=seed)
        qpos, qvel = hopper.data.qpos.copy(), hopper.data.qvel.copy()
        assert -0.3 * math.pi <= qpos[2] <= 0 and -10 <= qvel[2] <= 0 and 0 <= qvel[1] <= 3
        assert abs(lowest_point(hopper.model, hopper.data, qpos)) < 0.01 and qpos[1] >= 0.9  # on the foot
        q = _coast(env, 40)  # no torque: the spin and the rise it started with carry it
        left_floor += bool((clearance(q) > 0.1).any())
        turned_on += q[:, 2].min() < qpos[2] - 0.5
    assert left_floor >= 5 and turned_on >= 10
    mixed = make_env("prefrl/HopperBackflip-v0", flight_starts=0.5, takeoff_starts=0.5)
    kinds = []
    for seed in range(60):
        mixed.reset(seed=seed)
        data = mixed.unwrapped.data
        lifted = lowest_point(mixed.unwrapped.model, data, data.qpos.copy())
        kinds.append("flight" if lifted > 0.15 else "take-off" if data.qvel[2] < -0.05 or data.qpos[2] < -0.02
                     else "standing")
    assert kinds.count("flight") > 20 and 5 < kinds.count("take-off") < 25 and kinds.count("standing") > 5
    with pytest.raises(ValueError, match="takeoff_starts is a share"):
        make_env("prefrl/HopperBackflip-v0", takeoff_starts=1.5)


def test_backflip_practice_episodes_can_start_at_the_agents_own_flips_in_the_air():
    """own_flip_starts: once an episode has landed a flip in the air, that share of later episodes starts at its
    states (the angle shifted into the first turn); a flip that lay on the floor on the way is not kept, and until
    a flip is kept, episodes start standing."""
    env = make_env("prefrl/HopperBackflip-v0", own_flip_starts=1.0)
    env.reset(seed=0)
    assert abs(env.unwrapped.data.qpos[2]) < 0.1  # no flip yet: standing
    for _ in range(3):
        env.step(np.zeros(3))
    assert len(env.unwrapped._episode) == 4  # the start and each step are recorded
    turn = np.r_[np.zeros(30), np.linspace(0, -2 * math.pi, 100), np.full(60, -2 * math.pi)]
    rolled = _on_floor(turn).states  # a turn on the floor: lying on the way
    rolled[130:, 1] = STANDS_AT
    env.unwrapped._episode = list(rolled)
    env.reset(seed=1)
    assert abs(env.unwrapped.data.qpos[2]) < 0.1  # not kept: still standing
    heights = np.r_[np.full(30, STANDS_AT), np.full(100, 2.5), np.full(60, STANDS_AT)]
    flip = _hopper_clip(turn - 2 * math.pi, heights).states  # a second turn, in the air
    assert len(landed_backflips(rolled[:, :HOPPER_NQ])) == len(landed_backflips(flip[:, :HOPPER_NQ])) == 1
    env.unwrapped._episode = list(flip)
    starts = []
    for seed in range(2, 22):
        env.reset(seed=seed)
        starts.append(env.unwrapped.data.qpos.copy())
    kept = {tuple(np.round(q + [0, 0, 2 * math.pi, 0, 0, 0], 6)) for q in flip[:, :HOPPER_NQ]}
    assert all(tuple(np.round(q, 6)) in kept for q in starts)  # each a state of the flip, in the first turn
    assert len({tuple(q) for q in starts}) > 10 and min(q[2] for q in starts) < -math.pi  # drawn, the flight too
    with pytest.raises(ValueError, match="own_flip_starts is a share"):
        make_env("prefrl/HopperBackflip-v0", own_flip_starts=-0.5)


def test_backflip_env_copies_share_their_own_flips_through_a_file_that_outlives_the_run(tmp_path):
    """own_flips FILE: a flip one env copy lands is practised by another copy given the same file, and by a copy made
    later (a resumed run); the file says how many flips were found, keeps the states of the latest OWN_FLIPS_KEPT,
    and is a reference file."""
    shared = tmp_path / "run" / "own-flips.npz"
    finder, other = (make_env("prefrl/HopperBackflip-v0", own_flip_starts=1.0, own_flips=str(shared))
                     for _ in range(2))
    for env in (finder, other):
        env.reset(seed=0)
    turn = np.r_[np.zeros(30), np.linspace(0, -2 * math.pi, 100), np.full(60, -2 * math.pi)]
    heights = np.r_[np.full(30, STANDS_AT), np.full(100, 2.5), np.full(60, STANDS_AT)]
    flip = _hopper_clip(turn, heights).states
    finder.unwrapped._episode = list(flip)
    finder.reset(seed=1)
    segment = flip_segments(flip, in_the_air=True)[0]
    np.testing.assert_array_equal(read_own_flips(shared)[0], segment)
    kept = {tuple(np.round(q, 6)) for q in segment[:, :HOPPER_NQ]}
    for env in (other, make_env("prefrl/HopperBackflip-v0", own_flip_starts=1.0, own_flips=str(shared))):
        starts = [env.reset(seed=seed) and env.unwrapped.data.qpos.copy() for seed in range(2, 12)]
        assert all(tuple(np.round(q, 6)) in kept for q in starts) and len({tuple(q) for q in starts}) > 5
    for _ in range(OWN_FLIPS_KEPT + 5):  # the second copy finds many more
        other.unwrapped._episode = list(flip)
        other.reset(seed=2)
    with np.load(shared) as saved:
        assert len(saved["found_at"]) == OWN_FLIPS_KEPT + 6 and len(saved["lengths"]) == OWN_FLIPS_KEPT
    assert len(reference_states(shared)[0]) == OWN_FLIPS_KEPT * len(segment)
    counting = make_env("prefrl/HopperBackflip-v0", own_flips=str(tmp_path / "count.npz"))  # records, starts standing
    counting.reset(seed=0)
    counting.unwrapped._episode = list(flip)
    counting.reset(seed=1)
    assert len(read_own_flips(tmp_path / "count.npz")) == 1 and abs(counting.unwrapped.data.qpos[2]) < 0.1
    with pytest.raises(ValueError, match="own_flips .*give a new path"):  # a reference file is not an own-flip file
        make_env("prefrl/HopperBackflip-v0", own_flips=str(REFERENCE_FLIPS))


def test_backflip_practice_episodes_can_start_at_a_recorded_flip(tmp_path):
    """reference_starts: that share of the episodes starts at a state of the shipped flips (moments of flips in the
    air that landed, from the take-off to standing after), or of a file given; a bad file gets one clear error."""
    with np.load(REFERENCE_FLIPS) as saved:
        shipped = {tuple(np.round(q, 6)) for q in saved["qpos"]}
    env = make_env("prefrl/HopperBackflip-v0", reference_starts=1.0)
    starts = []
    for seed in range(30):
        env.reset(seed=seed)
        starts.append(env.unwrapped.data.qpos.copy())
        assert tuple(np.round(starts[-1], 6)) in shipped
    assert len({tuple(q) for q in starts}) > 20  # drawn, not one state
    assert sum(clearance(np.array(starts)) > 0.1) >= 5 and sum(q[2] < -math.pi for q in starts) >= 5  # the flight too
    mine = tmp_path / "mine.npz"
    np.savez(mine, qpos=np.tile([0.0, 1.3, -2.0, 0.0, 0.0, 0.0], (3, 1)), qvel=np.zeros((3, 6)))
    given = make_env("prefrl/HopperBackflip-v0", reference_starts=0.5, reference=str(mine))
    angles = []
    for seed in range(40):
        given.reset(seed=seed)
        angles.append(given.unwrapped.data.qpos[2])
    assert 8 < sum(a == -2.0 for a in angles) < 32 and sum(abs(a) < 0.1 for a in angles) > 8  # half, the rest standing
    with pytest.raises(ValueError, match="reference_starts is a share"):
        make_env("prefrl/HopperBackflip-v0", reference_starts=2.0)
    np.savez(mine, qpos=np.zeros((3, 4)), qvel=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"must be \(N, 6\) arrays of Hopper states"):
        make_env("prefrl/HopperBackflip-v0", reference_starts=0.5, reference=str(mine))
    with pytest.raises(ValueError, match="give an .npz with `qpos` and `qvel`"):
        make_env("prefrl/HopperBackflip-v0", reference_starts=0.5, reference=str(tmp_path / "none.npz"))


def test_backflip_practice_episodes_can_start_where_a_failed_flip_ends():
    fallen = make_env("prefrl/HopperBackflip-v0", fallen_starts=1.0)
    for seed in range(8):
        fallen.reset(seed=seed)
        qpos = fallen.unwrapped.data.qpos.copy()
        assert -1.95 * math.pi <= qpos[2] <= -1.25 * math.pi  # late in a backward turn
        assert qpos[1] < 1.0 and not standing(qpos[None, :HOPPER_NQ])[0]
        assert -8.0 <= fallen.unwrapped.data.qvel[2] <= 0.0  # still turning backwards
        fallen.step(np.zeros(3))  # on the floor, not dropped from a height nor pushed up out of it
        assert np.abs(fallen.unwrapped.data.qvel[:2]).max() < 1.0
    mixed = make_env("prefrl/HopperBackflip-v0", fallen_starts=0.5)
    starts = [mixed.reset(seed=seed)[0] for seed in range(40)]
    upright = sum(abs(obs[1]) < 0.1 for obs in starts)  # obs[1] is the torso's angle
    assert 10 < upright < 30
    assert all(abs(make_env("prefrl/HopperBackflip-v0").reset(seed=seed)[0][1]) < 0.1 for seed in range(5))
    with pytest.raises(ValueError, match="share of episodes, from 0 to 1"):
        make_env("prefrl/HopperBackflip-v0", fallen_starts=50)


def test_an_env_named_episode_measure_is_kept_under_another_teacher_score():
    env = make_env("prefrl/HopperBackflip-v0")
    step, episode = score_functions(env, "tests.factories:corridor_score")
    assert step is not None and step.__name__ == "corridor_score"
    assert episode is count_backflips  # the task's measure, whatever the teacher judges by
    step, episode = score_functions(make_env("tests.factories:make_corridor"), "tests.factories:corridor_score")
    clip = Clip(obs=np.linspace(-1, 0, 4)[:, None], acts=np.zeros(4, dtype=int), true_rewards=np.zeros(4))
    assert episode(clip) == pytest.approx(2.0)  # no measure named: the score's sum
