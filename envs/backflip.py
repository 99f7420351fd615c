"""Tasks with no reward for the behaviour we want, after Christiano et al. (2017): a Hopper backflip and a
HalfCheetah running forward on one leg. Each ships a scripted scorer over recorded clip states
(qpos|qvel per step), so synthetic teachers can train the trick and evaluations can measure it.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from gymnasium.envs.mujoco.hopper_v5 import HopperEnv

from prefrl.core.data import Clip

HOPPER_NQ, CHEETAH_NQ = 6, 9
HOPPER_DT = 0.008  # frame_skip 4 x timestep 0.002
LYING_HEIGHT = 0.5  # torso height (m) below which the hopper is lying
REFERENCE_FLIPS = Path(__file__).with_name("backflip_reference.npz")
"""The states (qpos, qvel) of 25 landed flips in the air, from 20 steps before each began to 40 steps after its whole
turn, each shifted into the first turn: a PPO agent trained on `backflip_score` (session 30's take-off seed 4, its
last agent), recorded on 20 fresh episodes by research/backflip/reference_states.py."""
OWN_FLIPS_KEPT = 50
"""How many of its latest flips in the air an env copy with `own_flip_starts` keeps to start episodes from."""


class HopperBackflipEnv(HopperEnv):
    """Hopper-v5 without the forward-progress and healthy rewards and without termination on falling, so it
    can flip and land. The env's reward is only the control cost: the trick is taught by preferences."""

    SCORES = {"prefrl_no_reward": True, "prefrl_score": "prefrl.envs.backflip:backflip_score",
              "prefrl_episode_score": "prefrl.envs.backflip:count_backflips"}

    def __init__(self, cut_after_lying: int | None = None, fallen_starts: float = 0.0, landed_starts: float = 0.0,
                 flight_starts: float = 0.0, takeoff_starts: float = 0.0, reference_starts: float = 0.0,
                 reference: str | None = None, own_flip_starts: float = 0.0, own_flips: str | None = None,
                 **kwargs: Any) -> None:
        """`cut_after_lying`: end the episode (truncated, not terminated) once the hopper has been lying (see `lying`)
        for this many steps in a row. A fallen hopper rarely gets up, so an uncut episode after a failed attempt is
        up to 900 steps of lying that teach nothing and that no person wants to watch; cut, a run sees several
        times more attempts for its steps. Default None: never cut.

        `fallen_starts`: the share of episodes that start on the floor late in a backward turn (see `fallen_pose`)
        instead of standing. Landing is the step no agent finds by chance: after a throw it lies, and from lying
        nothing it tries pays until it stands; a reward model that has never seen a landing does not pay it either.
        Started where a failed flip ends, still turning, the agent practises getting onto its foot, and its clips
        show landings early (3% of fallen starts land with random actions, against 0.5% from a still pose
        anywhere in the turn). Since lying ends a turn (below), such a start's angle is folded on its first step:
        it now practises getting up, not landing a flip (`flight_starts` does that). Default 0: every episode starts
        standing.

        `flight_starts`: the share of the episodes not started fallen that start in the air, anywhere in a backward
        flip from just after the take-off to just before the landing, spinning backwards and rising (see
        `flight_pose`). From standing, no agent lands a flip by chance; started in flight, it practises the turn in
        the air and putting its foot down (with zero torque about a quarter of these starts land and stand), so a
        hop with a backward spin from standing leads somewhere it has already been paid, and its clips show
        landings from the first steps. With starts late in the flip only (session 28) PPO landed no flip; with
        these, flips in the air (research/backflip/README.md, fifteenth and sixteenth rounds). Default 0.

        `takeoff_starts`: the share of the episodes not started fallen or in flight that start on the foot at the
        take-off of a backward flip: leaning back, the foot on the floor, the body already rising and spinning
        backwards (see `takeoff_pose`). Flight starts teach the turn in the air once the body spins; what PPO
        misses from standing in half its seeds is the take-off fast enough to turn the whole way (it jumps with a
        third of a turn's spin and falls on its back). Started at the take-off, it practises the push that sends
        the spin on. Measured, it did not raise how often PPO finds the flip (2 runs of 10 kept a flipper, against 5
        of 12 without; research/backflip/README.md, seventeenth round). Default 0.

        `landed_starts`: the share of the episodes that would start standing (not fallen, in flight or at the
        take-off) that start as if a flip had just landed: the same standing pose with the torso's unwrapped hinge
        angle one whole turn back (-2*pi). The body is where it was; what differs is the observed angle, and so
        what the score pays for standing (0.1 a step, against nothing before a flip). Without them the only clips
        of standing after a turn are an agent's own landings, and reward models learned from clips of standing
        against lying that upright is good wherever the torso had been, and their agents stood still
        (research/backflip/README.md, thirteenth round). Default 0.

        `reference_starts`: the share of all episodes that start at a state drawn uniformly from recorded flips
        (`reference`, an .npz of `qpos` and `qvel` rows; by default `REFERENCE_FLIPS`, a PPO agent's flips in the
        air): DeepMimic's reference state initialisation. Each state is a real moment of a flip that lands, from the
        take-off to standing after it, so the agent practises every phase of a flip that works, where the other
        starts draw poses that may not. With half the episodes started so, PPO on the score kept a flipper in 4
        seeds of 4 (against 8 of 24 with flight starts), and the issue's paced teacher taught flips in the air
        (research/backflip/README.md, eighteenth round). The default states come from another agent: a run that
        uses them is helped by that agent's flips (not its labels). With no agent behind them, the flips in the air
        an open-loop torque search finds from the score (research/backflip/open_loop_flip.py, twentieth round) kept
        a PPO flipper in the air in 2 seeds of 4. Default 0.

        `own_flip_starts`: the share of the episodes not started at a reference state that start at a state drawn
        from flips in the air this env copy's own episodes have landed (the latest OWN_FLIPS_KEPT, each from 20 steps
        before it began to 40 after its whole turn, see `flip_segments`; a flip with a step lying is not kept). Until
        the agent has landed one, they start as they would without it. Reference starts with no other agent behind
        them: a flip the agent finds once, by chance or from a practice start, is practised again from every phase,
        where otherwise it may not come back. Measured with the flight starts, PPO on the score kept a flipper in 1
        seed of 4, no better than without (research/backflip/README.md, nineteenth round). Default 0.

        `own_flips`: a file (.npz) in which every env copy given the same path shares its own flips: each copy adds
        the flips it lands and starts from the latest OWN_FLIPS_KEPT any copy added, so a flip one copy of a vectorised
        env finds is practised by all of them, and a resumed run starts with the flips it had (without it, each copy
        keeps its own in memory, lost on resume). The file holds the latest flips' `qpos` and `qvel` (a reference
        file, see `reference_states`) and `lengths` (each flip's rows), and `found_at`: when every flip ever added
        was found (Unix seconds), so it also says how many flips the agent found and when. Copies in other processes
        that add at the same moment may drop one another's flip. Without `own_flip_starts`, the flips are only
        recorded (a count of the flips in the air the training episodes landed). Default None.

        All eight are for training only (`prefrl train --train-env-kwargs cut_after_lying 200 flight_starts 0.5
        landed_starts 0.4`): evaluations play whole episodes from standing.

        Lying ends a turn: whenever the hopper lies (see `lying`: the torso low, the body on the floor), the
        torso's unwrapped angle is folded back to within half a turn of upright (the same pose; only the count of
        turns changes). A turn finished rolling on the floor is then no flip: the score pays standing only after a
        whole turn made without lying, and `count_backflips` counts only those. Before this, every flip PPO had
        learned here was such a roll (research/backflip/README.md, fifteenth round)."""
        if cut_after_lying is not None and cut_after_lying < 1:
            raise ValueError(f"cut_after_lying must be a positive number of steps (got {cut_after_lying}): "
                             "leave it out to never cut")
        if not 0.0 <= fallen_starts <= 1.0:
            raise ValueError(f"fallen_starts is a share of episodes, from 0 to 1 (got {fallen_starts})")
        if not 0.0 <= landed_starts <= 1.0:
            raise ValueError(f"landed_starts is a share of the standing starts, from 0 to 1 (got {landed_starts})")
        if not 0.0 <= flight_starts <= 1.0:
            raise ValueError(f"flight_starts is a share of the episodes, from 0 to 1 (got {flight_starts})")
        if not 0.0 <= takeoff_starts <= 1.0:
            raise ValueError(f"takeoff_starts is a share of the episodes, from 0 to 1 (got {takeoff_starts})")
        if not 0.0 <= reference_starts <= 1.0:
            raise ValueError(f"reference_starts is a share of the episodes, from 0 to 1 (got {reference_starts})")
        if not 0.0 <= own_flip_starts <= 1.0:
            raise ValueError(f"own_flip_starts is a share of the episodes, from 0 to 1 (got {own_flip_starts})")
        self._reference = reference_states(Path(reference) if reference else REFERENCE_FLIPS) if reference_starts \
            else None
        kwargs = {"forward_reward_weight": 0.0, "healthy_reward": 0.0, "terminate_when_unhealthy": False, **kwargs}
        super().__init__(**kwargs)
        self.metadata = {**self.metadata, **self.SCORES}  # MujocoEnv sets metadata in __init__
        self.cut_after_lying = cut_after_lying
        self.fallen_starts = fallen_starts
        self.landed_starts = landed_starts
        self.flight_starts = flight_starts
        self.takeoff_starts = takeoff_starts
        self.reference_starts = reference_starts
        self.own_flip_starts = own_flip_starts
        self.own_flips = Path(own_flips) if own_flips else None
        if self.own_flips is not None:
            try:
                _load_own_flips(self.own_flips)
            except (OSError, KeyError, ValueError) as e:
                raise ValueError(f"own_flips {self.own_flips}: {e}; give a new path, or a file an earlier run's "
                                 "own_flips wrote (a reference file goes to `reference`)") from e
        self._own_flips: deque[np.ndarray] = deque(maxlen=OWN_FLIPS_KEPT)
        self._own_read: int | None = None  # the shared file's mtime when this copy last read it
        self._own_states: np.ndarray | None = None  # the kept flips' states, one qpos|qvel row each
        self._episode: list[np.ndarray] = []  # this episode's states, with own_flip_starts or own_flips
        self._lying_steps = 0

    def reset_model(self) -> Any:
        obs = super().reset_model()  # standing, with the env's reset noise
        if self._reference is not None and self.np_random.random() < self.reference_starts:
            obs = self._start_at_one_of(*self._reference)
        elif self._own_states is not None and self.np_random.random() < self.own_flip_starts:
            obs = self._start_at_one_of(self._own_states[:, :HOPPER_NQ], self._own_states[:, HOPPER_NQ:])
        elif self.fallen_starts and self.np_random.random() < self.fallen_starts:
            self.set_state(*fallen_pose(self.model, self.data, self.np_random))
            obs = self._get_obs()
        elif self.flight_starts and self.np_random.random() < self.flight_starts:
            self.set_state(*flight_pose(self.model, self.data, self.np_random))
            obs = self._get_obs()
        elif self.takeoff_starts and self.np_random.random() < self.takeoff_starts:
            self.set_state(*takeoff_pose(self.model, self.data, self.np_random))
            obs = self._get_obs()
        elif self.landed_starts and self.np_random.random() < self.landed_starts:
            qpos = self.data.qpos.copy()
            qpos[2] -= 2 * math.pi
            self.set_state(qpos, self.data.qvel.copy())
            obs = self._get_obs()
        return obs

    def _start_at_one_of(self, qpos: np.ndarray, qvel: np.ndarray) -> Any:
        """Set the state to one row of (qpos, qvel), drawn uniformly; the observation there."""
        k = int(self.np_random.integers(len(qpos)))
        self.set_state(qpos[k], qvel[k])
        return self._get_obs()

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        if self._episode:  # keep the flips in the air the episode just ended landed, for own_flip_starts
            found = flip_segments(np.array(self._episode), in_the_air=True)
            self._episode = []
            if found and self.own_flips is not None:
                add_own_flips(self.own_flips, found)
            elif found:
                self._own_flips.extend(found)
                self._own_states = np.concatenate(self._own_flips)
        if self.own_flips is not None and self.own_flip_starts:
            self._read_own_flips(self.own_flips)
        self._lying_steps = 0
        out = super().reset(*args, **kwargs)
        self._record_state()
        return out

    def _read_own_flips(self, path: Path) -> None:
        """Start from the shared file's flips, reread whenever a copy has added one since this copy last read it."""
        try:
            changed = path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if changed != self._own_read:
            self._own_read = changed
            flips = read_own_flips(path)
            self._own_states = np.concatenate(flips) if flips else None

    def _record_state(self) -> None:
        if self.own_flip_starts or self.own_flips is not None:
            self._episode.append(np.r_[self.data.qpos, self.data.qvel])

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = super().step(action)
        down = bool(lying(self.data.qpos[None, :HOPPER_NQ])[0])
        if down and abs(self.data.qpos[2]) > math.pi:
            # lying ends any turn: the angle starts counting again from here (same pose, same physics)
            self.data.qpos[2] = float(np.angle(np.exp(1j * self.data.qpos[2])))
            obs = self._get_obs()
        if self.cut_after_lying is not None:
            self._lying_steps = self._lying_steps + 1 if down else 0
            truncated = truncated or self._lying_steps >= self.cut_after_lying
        self._record_state()
        return obs, reward, terminated, truncated, info


def flip_segments(states: np.ndarray, before: int = 20, after: int = 40, in_the_air: bool = False) -> list[np.ndarray]:
    """The states (qpos|qvel rows) of each landed flip in one Hopper trajectory (see `landed_backflips`), from `before`
    steps before it began to `after` steps after its whole turn, the torso's angle shifted by whole turns so that the
    flip begins within the first turn (started there, it is paid as a first flip). With `in_the_air`, a flip with a
    step lying between its beginning and its whole turn is left out."""
    qpos = states[:, :HOPPER_NQ]
    segments = []
    for began, turned in landed_backflips(qpos):
        if in_the_air and lying(qpos[began: turned + 1]).any():
            continue
        part = states[max(began - before, 0): turned + after + 1].copy()
        part[:, 2] -= 2 * math.pi * round(states[began, 2] / (2 * math.pi))
        segments.append(part)
    return segments


def read_own_flips(path: Path) -> list[np.ndarray]:
    """The flips (qpos|qvel rows, one array each) in an `own_flips` file, oldest first; none if there is no file."""
    return _load_own_flips(path)[0]


def add_own_flips(path: Path, flips: list[np.ndarray]) -> None:
    """Add `flips` to the `own_flips` file at `path` (made if missing): it keeps the states of the latest
    OWN_FLIPS_KEPT and when every flip ever added was found. Replaced whole, so that no reader sees half a file."""
    before, found_at = _load_own_flips(path)
    kept = (before + flips)[-OWN_FLIPS_KEPT:]
    rows = np.concatenate(kept)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part.npz")
    np.savez(part, qpos=rows[:, :HOPPER_NQ], qvel=rows[:, HOPPER_NQ:], lengths=np.array([len(f) for f in kept]),
             found_at=np.r_[found_at, np.full(len(flips), time.time())])
    os.replace(part, path)


def _load_own_flips(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """An `own_flips` file's kept flips (oldest first) and `found_at`, read in one open; none if there is no file."""
    if not path.exists():
        return [], np.zeros(0)
    with np.load(path) as saved:
        rows = np.c_[saved["qpos"], saved["qvel"]]
        flips = np.split(rows, np.cumsum(saved["lengths"])[:-1]) if len(rows) else []
        return flips, saved["found_at"]


def reference_states(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The (qpos, qvel) rows of a file of recorded Hopper states, or one error that says what the file must hold."""
    try:
        with np.load(path) as saved:
            qpos, qvel = np.asarray(saved["qpos"], dtype=float), np.asarray(saved["qvel"], dtype=float)
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"reference {path}: {e}; give an .npz with `qpos` and `qvel` arrays of Hopper states "
                         "(research/backflip/reference_states.py records one from a run), or leave reference out "
                         "for the shipped flips") from e
    if qpos.ndim != 2 or qpos.shape[1] != HOPPER_NQ or qvel.shape != qpos.shape or not len(qpos):
        raise ValueError(f"reference {path}: qpos and qvel must be (N, {HOPPER_NQ}) arrays of Hopper states with N > 0 "
                         f"(got {qpos.shape} and {qvel.shape})")
    return qpos, qvel


FALLEN_TURN = (-1.95 * math.pi, -1.25 * math.pi)
"""The torso angles `fallen_pose` starts from: from past upside down (5/8 of a turn) to nearly a whole turn."""
FALLEN_SPIN = 8.0
"""The fastest backward spin (rad/s) of the torso that `fallen_pose` starts with."""


def fallen_pose(model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A hopper state (qpos, qvel) late in a backward turn and on the floor, where a failed flip ends: the torso's
    angle uniform over FALLEN_TURN, each leg joint uniform over its range, the body lowered until its lowest point
    touches the floor, and the torso turning backwards at up to FALLEN_SPIN. `data` is overwritten."""
    qpos, qvel = turned_pose(model, rng, FALLEN_TURN), np.zeros(model.nv)
    qpos[1] -= lowest_point(model, data, qpos) - 0.005  # qpos[1] is the torso's height: lift or lower the body
    qvel[2] = -rng.uniform(0.0, FALLEN_SPIN)
    return qpos, qvel


def turned_pose(model: mujoco.MjModel, rng: np.random.Generator, turn: tuple[float, float]) -> np.ndarray:
    """A hopper pose (qpos) with the torso's angle uniform over `turn`, each leg joint uniform over its range, and
    the torso at height 0 (the practice poses then lift or lower it)."""
    qpos = np.zeros(model.nq)
    qpos[2] = rng.uniform(*turn)
    low, high = model.jnt_range[3:HOPPER_NQ].T
    qpos[3:HOPPER_NQ] = rng.uniform(low, high)
    return qpos


def lowest_point(model: mujoco.MjModel, data: mujoco.MjData, qpos: np.ndarray) -> float:
    """Height above the floor of the hopper's lowest point in pose `qpos` (forward kinematics into `data`)."""
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    body = [g for g in range(model.ngeom) if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE]
    axis_z = np.abs(data.geom_xmat[body].reshape(-1, 3, 3)[:, 2, 2])  # the capsule's axis is its local z
    return float(np.min(data.geom_xpos[body, 2] - axis_z * model.geom_size[body, 1] - model.geom_size[body, 0]))


FLIGHT_TURN = (-1.8 * math.pi, -0.1 * math.pi)
"""The torso angles `flight_pose` starts from: from just after the take-off to most of a turn."""
FLIGHT_SPIN = (4.0, 12.0)
"""The backward spin (rad/s) of the torso that `flight_pose` starts with."""
FLIGHT_CLEARANCE = (0.2, 0.8)
"""How high (m) the body's lowest point starts above the floor in `flight_pose`."""
FLIGHT_RISE = (0.0, 3.0)
"""How fast (m/s) the body starts rising in `flight_pose`."""


def flight_pose(model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A hopper state (qpos, qvel) in the air during a backward flip: the torso's angle uniform over FLIGHT_TURN,
    each leg joint uniform over its range, the body's lowest point uniform over FLIGHT_CLEARANCE above the floor
    (and the torso above 0.75 m, so it does not start lying), spinning backwards at a speed uniform over
    FLIGHT_SPIN and rising at a speed uniform over FLIGHT_RISE. `data` is overwritten."""
    qpos, qvel = turned_pose(model, rng, FLIGHT_TURN), np.zeros(model.nv)
    qpos[1] += max(rng.uniform(*FLIGHT_CLEARANCE) - lowest_point(model, data, qpos), 0.75 - qpos[1])
    qvel[1] = rng.uniform(*FLIGHT_RISE)
    qvel[2] = -rng.uniform(*FLIGHT_SPIN)
    return qpos, qvel


TAKEOFF_TURN = (-0.3 * math.pi, 0.0)
"""The torso angles `takeoff_pose` starts from: upright to leaning back 0.15 of a turn."""
TAKEOFF_SPIN = (0.0, 10.0)
"""The backward spin (rad/s) of the torso that `takeoff_pose` starts with."""
TAKEOFF_RISE = (0.0, 3.0)
"""How fast (m/s) the body starts rising in `takeoff_pose`."""
TAKEOFF_HEIGHT = 0.9
"""The lowest torso height (m) of a `takeoff_pose`: poses that would start it lower are drawn again."""


def takeoff_pose(model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A hopper state (qpos, qvel) at the take-off of a backward flip: the torso's angle uniform over TAKEOFF_TURN,
    each leg joint uniform over its range, the body lowered or lifted until its lowest point touches the floor
    (drawn again until the torso is at least TAKEOFF_HEIGHT up), rising at a speed uniform over TAKEOFF_RISE and
    spinning backwards at a speed uniform over TAKEOFF_SPIN. `data` is overwritten."""
    while True:
        qpos = turned_pose(model, rng, TAKEOFF_TURN)
        qpos[1] -= lowest_point(model, data, qpos) - 0.005
        if qpos[1] >= TAKEOFF_HEIGHT:
            break
    qvel = np.zeros(model.nv)
    qvel[1] = rng.uniform(*TAKEOFF_RISE)
    qvel[2] = -rng.uniform(*TAKEOFF_SPIN)
    return qpos, qvel


class HalfCheetahOneLegEnv(HalfCheetahEnv):
    """HalfCheetah-v5 with no reward but the control cost: moving forward on the back leg alone is taught by
    preferences (the front foot stays off the ground)."""

    SCORES = {"prefrl_no_reward": True, "prefrl_score": "prefrl.envs.backflip:one_leg_score",
              "prefrl_episode_score": "prefrl.envs.backflip:one_leg_distance"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"forward_reward_weight": 0.0, **kwargs})
        self.metadata = {**self.metadata, **self.SCORES}


def clip_states(clip: Clip, nq: int) -> tuple[np.ndarray, np.ndarray]:
    """(qpos, qvel) per step of a clip recorded from a MuJoCo env whose qpos has `nq` entries."""
    if clip.states is None:
        raise ValueError("this scorer needs recorded MuJoCo states (qpos|qvel) in the clip")
    return clip.states[:, :nq], clip.states[:, nq:]


# The hopper score's parts, per step of qpos (T, 6) | qvel (T, 6); research/backflip/backflip_variants.py recombines
# them.

def tilt(angle: np.ndarray) -> np.ndarray:
    """How far the torso leans from upright (radians, 0 to pi), whatever number of turns it has made."""
    return np.abs(np.angle(np.exp(1j * angle)))


def standing(qpos: np.ndarray) -> np.ndarray:
    """Torso within 0.5 rad of vertical (any number of turns) at standing height (0.8-1.4 m; it stands at 1.25)."""
    return (tilt(qpos[:, 2]) < 0.5) & (qpos[:, 1] > 0.8) & (qpos[:, 1] < 1.4)


LYING_CLEARANCE = 0.1
"""Clearance (m, see `clearance`) below which a hopper with its torso low is on the floor, so lying."""


def lying(qpos: np.ndarray, lift: np.ndarray | None = None) -> np.ndarray:
    """Torso below LYING_HEIGHT, or below 0.65 m and upside down (more than 90 degrees from upright), with the
    body on the floor: its lowest point less than LYING_CLEARANCE up (`lift`, the clearance of each row, computed
    where not given). A low flip passes upside down with the torso at 0.6 m and the whole body 0.4 m clear of the
    floor: that is a flip in the air, not lying (before session 30 it counted as lying, which ended its turn)."""
    height = qpos[:, 1]
    low = (height < LYING_HEIGHT) | ((height < 0.65) & (tilt(qpos[:, 2]) > math.pi / 2))
    if lift is None:
        lift = np.zeros(len(qpos))
        lift[low] = clearance(qpos[low])
    return low & (lift < LYING_CLEARANCE)


def whole_turns(angle: np.ndarray) -> np.ndarray:
    """Whole backward turns of the torso since the start, from its unwrapped hinge angle (give or take 0.5 rad)."""
    return np.maximum(np.floor((0.5 - angle) / (2 * math.pi)), 0.0)


def rotation_paid(qvel: np.ndarray, paid: np.ndarray) -> np.ndarray:
    """Backward rotation of the torso this step (radians, at most 0.1), paid only where `paid`; turning forwards
    costs anywhere."""
    backward = np.minimum(-qvel[:, 2] * HOPPER_DT, 0.1)
    return np.where(paid, backward, np.minimum(backward, 0.0))


def backward_rotation(qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    """`rotation_paid` while the torso is above 0.6 m."""
    return rotation_paid(qvel, qpos[:, 1] > 0.6)


HANG_TURN = 0.02
"""Backward rotation per step (rad) below which an upside-down hopper counts as hanging there (`hanging`)."""
LANDED_STANDING = 0.1
"""What `backflip_score` pays a step for standing after the first whole backward turn."""


def slow_turn(qvel: np.ndarray) -> np.ndarray:
    """Turning backwards slower than HANG_TURN rad a step (or forwards)."""
    return -qvel[:, 2] * HOPPER_DT < HANG_TURN


def hanging(qpos: np.ndarray, qvel: np.ndarray, lift: np.ndarray | None = None) -> np.ndarray:
    """Torso more than 90 degrees from upright, not lying (`lift` as for `lying`), and turning slowly: a headstand,
    or hanging at the top of a jump."""
    return (tilt(qpos[:, 2]) > math.pi / 2) & ~lying(qpos, lift) & slow_turn(qvel)


AIRBORNE = 0.02
"""Clearance (m, see `clearance`) above which the whole hopper is off the floor."""
JUMP_PAY = 0.3
"""What `backflip_score` pays a step per metre of clearance before the first whole turn: the jump."""


@lru_cache(maxsize=1)
def _hopper() -> tuple[mujoco.MjModel, mujoco.MjData]:
    model = HopperEnv().model
    return model, mujoco.MjData(model)


def clearance(qpos: np.ndarray) -> np.ndarray:
    """Height above the floor of the hopper's lowest point, per row of qpos (T, 6) (forward kinematics)."""
    model, data = _hopper()
    full = np.zeros(model.nq)
    out = np.empty(len(qpos))
    for t, q in enumerate(qpos):
        full[:HOPPER_NQ] = q
        out[t] = lowest_point(model, data, full)
    return out


def backflip_score(clip: Clip, waiting_cost: float = 0.0, air_only: bool = True,
                   jump_pay: float = JUMP_PAY) -> np.ndarray:
    """Per-step score of one backflip made in the air and then standing:
    - backward rotation of the torso (radians this step, at most 0.1) while the whole body is off the floor
      (clearance above AIRBORNE), paid during the first whole backward turn only; turning forwards costs
      anywhere. With `air_only=False`, paid wherever the torso is above 0.6 m (`backward_rotation`: the score
      shipped in sessions 27 and 28, which pays a lean back on the foot);
    - `jump_pay` (JUMP_PAY, 0.3) a step per metre of clearance during the first whole turn: the jump;
    - LANDED_STANDING (0.1) a step standing once a whole backward turn is done: the landing. Since the env ends
      a turn whenever the hopper lies, only a turn made without lying on the floor lands;
    - minus 0.05 a step lying (torso below 0.5 m, or below 0.65 m and upside down, on the floor) or hanging upside down
      off the ground while turning slowly (a headstand);
    - minus `waiting_cost` a step for each step before the first whole turn that is neither lying nor hanging (0
      shipped; research's `one_flip_or_nothing` charges standing before the flip as lying).

    A second turn earns nothing, so after the first flip landing is the only way to earn more. PPO on the score of
    sessions 27 and 28 (`air_only=False, jump_pay=0`) landed no flip in the air once lying ended a turn: it threw
    itself onto its back, or leaned back and held; on this one, with `flight_starts`, it lands flips in the air
    (research/backflip/README.md, fifteenth and sixteenth rounds). The torso's hinge angle is unwrapped and in the
    observation, so the score stays a function of the step's state."""
    qpos, qvel = clip_states(clip, HOPPER_NQ)
    lift = np.maximum(clearance(qpos), 0.0)
    rotation = rotation_paid(qvel, lift > AIRBORNE) if air_only else backward_rotation(qpos, qvel)
    first_turn = -qpos[:, 2] < 2 * math.pi
    turned = whole_turns(qpos[:, 2]) >= 1
    down = lying(qpos, lift) | hanging(qpos, qvel, lift)
    landed = LANDED_STANDING * turned * standing(qpos)
    waiting = ~turned & ~down
    return (np.where(first_turn, rotation + jump_pay * lift, np.minimum(rotation, 0.0)) + landed - 0.05 * down
            - waiting_cost * waiting)


def count_backflips(clip: Clip) -> float:
    """Completed backward rotations that end in a landing: the torso has turned another full 2*pi backwards,
    and within the next 80 steps (0.64 s) the hopper stands for 20 steps in a row: torso within 0.5 rad of
    vertical at standing height (0.8-1.4 m; it stands at 1.25)."""
    qpos, _ = clip_states(clip, HOPPER_NQ)
    return float(len(landed_backflips(qpos)))


def landed_backflips(qpos: np.ndarray) -> list[tuple[int, int]]:
    """(step the flip began, step it completed) for each landed backflip in a Hopper trajectory (see
    `count_backflips`); a flip begins where the torso last passed the previous whole turn."""
    turned = -(qpos[:, 2] - qpos[0, 2])
    stands = standing(qpos)
    run = np.zeros(len(stands), dtype=int)  # consecutive standing steps ending at t
    for t in range(len(stands)):
        run[t] = (run[t - 1] + 1 if t else 1) if stands[t] else 0
    flips, k = [], 1
    for t in range(len(turned)):
        if turned[t] >= 2 * math.pi * k:
            if (run[t: t + 80] >= 20).any():
                began = np.flatnonzero(turned[:t] < 2 * math.pi * (k - 1) + 0.1)
                flips.append((int(began[-1]) if len(began) else 0, t))
            k += 1
    return flips


@lru_cache(maxsize=1)
def _cheetah() -> tuple[mujoco.MjModel, mujoco.MjData, int]:
    model = HalfCheetahEnv().model
    return model, mujoco.MjData(model), mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "ffoot")


def front_foot_height(qpos: np.ndarray) -> np.ndarray:
    """Height of the front foot geom above the floor for each qpos row (forward kinematics)."""
    model, data, foot = _cheetah()
    out = np.empty(len(qpos))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        out[t] = data.geom_xpos[foot, 2]
    return out


def one_leg_score(clip: Clip) -> np.ndarray:
    """Per-step score: forward velocity while the front foot is off the ground (above 0.15 m), else nothing
    for moving and a penalty of 0.2 for the foot being down."""
    qpos, qvel = clip_states(clip, CHEETAH_NQ)
    up = front_foot_height(qpos) > 0.15
    return np.where(up, qvel[:, 0], -0.2) * 0.05


def one_leg_distance(clip: Clip) -> float:
    """Metres travelled forward with the front foot up, over the episode."""
    qpos, qvel = clip_states(clip, CHEETAH_NQ)
    return float(np.sum(np.where(front_foot_height(qpos) > 0.15, qvel[:, 0], 0.0)) * 0.05)
