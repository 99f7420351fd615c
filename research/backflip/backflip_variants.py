"""The HopperBackflip variants tried in this folder's README.md (sessions 4 to 12), kept so those runs can be repeated.

Run from this folder, so that `backflip_variants` imports (prefrl puts the working directory on the path):

    cd research/backflip
    prefrl train --env backflip_variants:hopper_cut_when_lying --agent.n-steps 512 \\
        --labels 1000 --queries.selection disagreement --queries.clip-length 50 --steps 1500000 --seed 1
    prefrl train --env prefrl/HopperBackflip-v0 --teacher-score backflip_variants:standing_bonus_from_the_start ...

The factories here wrap prefrl/HopperBackflip-v0, and since session 27 a run takes that env's PPO preset
(512-step rollouts) by itself; before, they took SB3's defaults unless given `--agent.n-steps 512`.

Session 4's runs used the score shipped then: add
`--teacher-score backflip_variants:standing_bonus_from_the_start` to repeat them. Sessions 5 to 26 ran with
`every_turn_pays` as the env's score: add `--teacher-score backflip_variants:every_turn_pays` to repeat them (the
`--reward true` runs of those sessions too). Sessions 27 and 28 shipped `one_flip` as the env's score; since
session 29 it ships `air_flip_jump` (`backflip_score` with its defaults). None of the others is shipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import prefrl.envs  # noqa: F401  (registers prefrl/HopperBackflip-v0)
from prefrl.core.data import Answer, Clip
from prefrl.core.store.sqlite import PreferenceStore
from prefrl.envs.backflip import (
    HOPPER_NQ,
    JUMP_PAY,
    LANDED_STANDING,
    LYING_HEIGHT,
    backflip_score,
    backward_rotation,
    clip_states,
    hanging,
    lying,
    slow_turn,
    standing,
    tilt,
    whole_turns,
)


def hopper_cut_when_lying(cut_after_lying: int = 50, **kwargs: Any) -> gym.Env:
    """prefrl/HopperBackflip-v0 (its score and metadata included; other keyword arguments go to it) whose episodes
    end after 50 steps lying: the env's own `cut_after_lying` since session 28. The tenth round's runs used a wrapper
    here that judged lying by the torso's height alone (below 0.5 m); the env's `lying` also counts the torso
    upside down below 0.65 m."""
    return gym.make("prefrl/HopperBackflip-v0", cut_after_lying=cut_after_lying, **kwargs)


class TorsoAngleAsSinCos(gym.ObservationWrapper):
    """The hopper's observation with the torso's unwrapped hinge angle replaced by its sine, its cosine and the
    whole backward turns made so far (at most 5): 13 numbers instead of 11.

    The reward model extrapolates the unwrapped angle: trained on clips that never turned a full turn, it scored
    the flips of the PPO-on-score agent lower the further round they went (-97 for 50 steps at -24 rad that
    the score gives +4.1, against +150 for its first 50 steps; README.md, fifth round). The sine and
    cosine stay in range whatever the number of turns, and the turn count keeps the score a function of the
    observation."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        low, high = env.observation_space.low, env.observation_space.high  # type: ignore[attr-defined]
        self.observation_space = gym.spaces.Box(np.r_[low[:1], -1, -1, 0, low[2:]], np.r_[high[:1], 1, 1, 5, high[2:]],
                                                dtype=np.float64)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        angle = observation[1]
        turns = min(float(whole_turns(angle)), 5.0)
        return np.r_[observation[:1], np.sin(angle), np.cos(angle), turns, observation[2:]]


def hopper_sin_cos(**kwargs: Any) -> gym.Env:
    """prefrl/HopperBackflip-v0 (its score and metadata included; `render_mode`, `width`, `height` go to it)
    observed through `TorsoAngleAsSinCos`."""
    return TorsoAngleAsSinCos(gym.make("prefrl/HopperBackflip-v0", **kwargs))


def hopper_landed(landed_starts: float = 0.0, **kwargs: Any) -> gym.Env:
    """prefrl/HopperBackflip-v0 with its `landed_starts` (other keyword arguments go to it too), as the
    fourteenth round's runs name it; pass `--train-env-kwargs landed_starts 0.4` so that evaluations start as
    registered. Before the option was the env's, this was a wrapper drawing the same random numbers."""
    return gym.make("prefrl/HopperBackflip-v0", landed_starts=landed_starts, **kwargs)


def hopper_whole_flight(whole_flight: float = 0.0, **kwargs: Any) -> gym.Env:
    """prefrl/HopperBackflip-v0 (other keyword arguments go to it) with `whole_flight` of its episodes started in the
    air anywhere in a backward flip: the env's `flight_starts` since session 29. Session 28's runs (fifteenth round)
    used a wrapper here that drew the env's late-flight pose and then redrew its angle over the whole flight (0.1 to
    1.8 of a half turn back), lifted it to 0.2 m clear and set it rising at up to 3 m/s, overriding any start; the
    env's `flight_pose` now draws the same ranges directly, so a repeat of those runs draws other starts from the
    same seeds."""
    return gym.make("prefrl/HopperBackflip-v0", flight_starts=whole_flight, **kwargs)


def hopper_reference_starts(reference_starts: float = 0.0, reference: str | None = None, **kwargs: Any) -> gym.Env:
    """prefrl/HopperBackflip-v0 with its `reference_starts` (other keyword arguments go to it too), as the eighteenth
    round's runs name it. Those runs (session 31) drew the start in a wrapper after the env's own reset, from
    research/backflip/reference-flips.npz, the file the env now ships as `REFERENCE_FLIPS`; the env draws it first,
    so a repeat draws other starts from the same seeds."""
    return gym.make("prefrl/HopperBackflip-v0", reference_starts=reference_starts, reference=reference, **kwargs)


class PreferredStarts(gym.Wrapper):
    """Starts a share of the episodes at a state drawn uniformly from the clips the teacher preferred in the run's own
    preference store (the winner of each of the latest `recent` labelled pairs; equal and skipped answers give none):
    reference state initialisation with the run's own best clips as the reference, so no other agent is needed.
    Reread every `refresh` resets; until the first label, every episode starts as the env starts it."""

    def __init__(self, env: gym.Env, share: float, store: str, recent: int = 200, refresh: int = 10) -> None:
        super().__init__(env)
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"preferred_starts is a share of the episodes, from 0 to 1 (got {share})")
        self.share, self.path, self.recent, self.refresh = share, Path(store), recent, refresh
        self._store: PreferenceStore | None = None
        self._clip_states: dict[int, np.ndarray] = {}
        self._states = np.zeros((0, 2 * HOPPER_NQ))
        self._resets = 0

    def winners(self) -> list[int]:
        """Ids of the preferred clips of the latest `recent` labelled pairs."""
        if self._store is None:
            if not self.path.exists():
                return []
            self._store = PreferenceStore(self.path)
        pairs = self._store.labelled_pairs()[-self.recent:]
        return [q.left_id if label.answer == Answer.LEFT else q.right_id for q, label in pairs
                if label.answer in (Answer.LEFT, Answer.RIGHT)]

    def _reread(self) -> None:
        ids = self.winners()
        for clip_id in set(ids) - set(self._clip_states):
            self._clip_states[clip_id] = np.asarray(self._store.clip(clip_id).states)  # type: ignore[union-attr]
        if ids:
            self._states = np.concatenate([self._clip_states[i] for i in ids])

    def reset(self, **kwargs: Any) -> Any:
        if self._resets % self.refresh == 0:
            self._reread()
        self._resets += 1
        obs, info = self.env.reset(**kwargs)
        base = self.env.unwrapped
        if len(self._states) and base.np_random.random() < self.share:
            state = self._states[int(base.np_random.integers(len(self._states)))]
            base.set_state(state[:HOPPER_NQ], state[HOPPER_NQ:])
            obs = base._get_obs()
        return obs, info


def hopper_preferred_starts(preferred_starts: float = 0.0, store: str = "", **kwargs: Any) -> gym.Env:
    """prefrl/HopperBackflip-v0 (other keyword arguments go to it) with `preferred_starts` of its episodes started at a
    state of a clip its teacher preferred (`PreferredStarts`; `store` is the run's own prefs.sqlite, which need not
    exist yet). Default 0: the env as registered, which is what evaluations play."""
    env = gym.make("prefrl/HopperBackflip-v0", **kwargs)
    if not preferred_starts:
        return env
    if not store:
        raise ValueError("preferred_starts needs store: the run's own prefs.sqlite (RUN/prefs.sqlite)")
    return PreferredStarts(env, preferred_starts, store)


def standing_bonus_from_the_start(clip: Clip) -> np.ndarray:
    """The score shipped as `backflip_score` in sessions 3 and 4: the same rotation term, but +0.02 for every
    step standing, flips or not, and lying judged by height alone (torso below 0.5 m). Standing still for a
    whole episode (20) outscored the flips PPO learned on it (about 8): the trap README.md describes."""
    qpos, qvel = clip_states(clip, HOPPER_NQ)
    return backward_rotation(qpos, qvel) + 0.02 * standing(qpos) - 0.05 * (qpos[:, 1] < LYING_HEIGHT)


def smaller_standing_bonus(clip: Clip) -> np.ndarray:
    """`standing_bonus_from_the_start` with 0.01 instead of 0.02 for each step standing."""
    return standing_bonus_from_the_start(clip) - 0.01 * standing(clip_states(clip, HOPPER_NQ)[0])


FAST_TURN = 0.03
"""Backward rotation per step (rad) that `fast_turns` does not pay for: a slow creep over is worth nothing."""


def fast_turns(clip: Clip) -> np.ndarray:
    """`every_turn_pays` with the rotation term paid only above FAST_TURN rad a step (the part above it), so
    turning slowly over onto the head, which the preference-trained agents of session 5 learned, earns nothing.
    Turning forwards still costs, and standing and lying are scored as before."""
    qpos, qvel = clip_states(clip, HOPPER_NQ)
    rotation = backward_rotation(qpos, qvel)
    standing_pay = 0.02 * whole_turns(qpos[:, 2]) * standing(qpos)
    return rotation - np.clip(rotation, 0.0, FAST_TURN) + standing_pay - 0.05 * lying(qpos)


def landing_pays(clip: Clip) -> np.ndarray:
    """`every_turn_pays` with standing after k whole backward turns paid LANDED_STANDING * k a step, five times
    its 0.02 * k. A 150-step clip that lands a flip and stands for 50 steps then outscores one that
    creeps over onto the head and hangs there by about 5 more, where `every_turn_pays` gave it about 1 more."""
    qpos, qvel = clip_states(clip, HOPPER_NQ)
    standing_pay = LANDED_STANDING * whole_turns(qpos[:, 2]) * standing(qpos)
    return backward_rotation(qpos, qvel) + standing_pay - 0.05 * lying(qpos)


def every_turn_pays(clip: Clip) -> np.ndarray:
    """The env's score from session 5 to session 26: backward rotation of the torso (radians this step, at most
    0.1) while the torso is above 0.6 m, every turn alike (turning forwards costs anywhere); plus 0.02 a step
    standing for each whole backward turn completed since the start; minus 0.05 a step lying. The rounds of
    README.md up to the thirteenth call it "the shipped score"."""
    qpos, qvel = clip_states(clip, HOPPER_NQ)
    return backward_rotation(qpos, qvel) + 0.02 * whole_turns(qpos[:, 2]) * standing(qpos) - 0.05 * lying(qpos)


standing_after_turns = every_turn_pays
"""The name session 5's runs gave the score (their config.json records it) before it was shipped."""


def no_hang(clip: Clip) -> np.ndarray:
    """`landing_pays`, and hanging upside down costs as much as lying: 0.05 a step with the torso more than 90
    degrees from upright, off the ground, and turning backwards slower than HANG_TURN rad a step. Every
    preference run that got up in sessions 5 to 9 crept over onto its head and stayed there, where the other
    scores charged nothing; a flip passes through upside down at speed and is not charged."""
    qpos, qvel = clip_states(clip, HOPPER_NQ)
    return landing_pays(clip) - 0.05 * hanging(qpos, qvel)


RESTING_COST = 0.02
"""What `no_rest` charges a step for resting anywhere but standing (a third of what lying costs)."""


def no_rest(clip: Clip) -> np.ndarray:
    """`no_hang`, and resting anywhere but standing costs RESTING_COST a step: off the ground (not lying), not
    standing, not already charged for hanging, and turning backwards slower than HANG_TURN rad a step. The
    preference agents of sessions 10 and 11 stopped in such places (leaning back 30 to 90 degrees on the foot,
    crouching at 0.6 m), which `no_hang` scores at about nothing; so, discounted at gamma 0.99, does a failed
    flip (rotation paid up front, lying charged later), while their models paid its turn less. With this charge
    standing is the only free place to stop. A flip passes the resting states at speed."""
    qpos, qvel = clip_states(clip, HOPPER_NQ)
    resting = ~standing(qpos) & ~lying(qpos) & ~hanging(qpos, qvel) & slow_turn(qvel)
    return no_hang(clip) - RESTING_COST * resting


TURN_PAY = 2.0
"""What `attempts_pay` pays for each radian of backward rotation (`every_turn_pays` and `no_hang`: 1)."""


def attempts_pay(clip: Clip) -> np.ndarray:
    """`no_hang` with backward rotation paid TURN_PAY times: a teacher who praises a fast throw backwards even when
    it ends on the ground. Discounted at gamma 0.99 from the start of an episode, `no_hang` pays a failed flip
    (a fast turn, then lying) about what leaning or crouching on the foot earns (0.4 to 0.7 against 0.3 to 0.5),
    and the preference agents of sessions 10 and 11 stopped at those rests. Here a failed flip earns 1.8 to 3.5
    against 0.6 to 1.3, so a model has room to be wrong about it. Lying is still charged and the turn is still paid
    only above 0.6 m. Its flaw: tumbling over and over off the ground, never standing, earns more than a landed
    flip, by more than under `no_hang`, and one preference agent learned to (README.md, tenth round)."""
    qpos, qvel = clip_states(clip, HOPPER_NQ)
    return no_hang(clip) + (TURN_PAY - 1.0) * backward_rotation(qpos, qvel)


def later_turns_pay_less(clip: Clip) -> np.ndarray:
    """`attempts_pay` with the pay for backward rotation falling with the whole turns already made: TURN_PAY / (1 + k)
    a radian after k whole turns (2 for the first turn, 1 for the second, 2/3 for the third...). The first throw is
    praised as in `attempts_pay`, while tumbling over and over off the ground, which under `attempts_pay` outearns a
    landed flip (README.md, tenth round: seed 7), earns less with every turn, against standing after k turns that
    earns 0.1 * k a step. Still a function of each step's state: k comes from the unwrapped torso angle."""
    qpos, qvel = clip_states(clip, HOPPER_NQ)
    rate = TURN_PAY / (1.0 + whole_turns(qpos[:, 2]))
    return no_hang(clip) + (rate - 1.0) * backward_rotation(qpos, qvel)


LANDED_BONUS = 1.0
"""What `flip_progress` adds for each step standing after a whole backward turn."""
PAST_THE_TURN = 0.25
"""Where `turn_progress` peaks: this far (radians) past a whole turn, so the hopper that stands up again leans past
upright rather than stopping short of it (`count_backflips` counts a flip only once the torso has turned 2 pi)."""
LANDING_ENDS = 2 * np.pi + 3 * PAST_THE_TURN
"""How far the torso may have turned (radians) for `flip_progress` to pay standing as a landing, and `_rise` height."""


def turn_progress(angle: np.ndarray) -> np.ndarray:
    """How far through one backward turn the torso is, 0 to 1, from its unwrapped hinge angle: 0 upright at the start
    (or leaning forwards), about 1/4 lying on its back, 1/2 upside down, 3/4 face down, 1 upright again just past the
    turn; further on it falls again (a second turn is no progress), so tumbling on earns less than landing."""
    peak = 2 * np.pi + PAST_THE_TURN
    turned = -angle
    return np.clip(np.minimum(turned, 2 * peak - turned), 0.0, peak) / peak


def flip_progress(clip: Clip) -> np.ndarray:
    """A teacher who judges how far through a backflip the hopper has got, not how fast it turns: per step,
    `turn_progress` of the torso (0 to 1), plus LANDED_BONUS for standing after the whole turn. Each step's score is
    a function of two numbers in the observation (torso height and unwrapped angle), which a reward model can learn
    from few labels; every pose along the flip (on its back, on its head, face down, up again) pays more than the one
    before, so no resting place before the landing pays as much as going on, where going on is possible (PPO found
    a fold at the hip that turns the torso over on the ground and ends kneeling, from which it found no way up:
    README.md, twelfth round); and the most an episode can earn is to flip once and stand."""
    qpos, _ = clip_states(clip, HOPPER_NQ)
    turned = -qpos[:, 2]
    landed = standing(qpos) & (turned >= 2 * np.pi) & (turned < LANDING_ENDS)
    return turn_progress(qpos[:, 2]) + LANDED_BONUS * landed


RISE_PAY = 1.0
"""What `flip_then_rise` pays a step for the torso's height once the hopper is past face down: from 0 at 0.3 m to
RISE_PAY at 1.1 m (it stands at 1.25)."""


def _rise(qpos: np.ndarray, floor: float) -> np.ndarray:
    """The torso's height from `floor` (0) to 1.1 m (1) while the hopper is past face down and up to the end of
    `flip_progress`'s landing, with the torso pointing up; 0 elsewhere."""
    turned = -qpos[:, 2]
    over = (turned >= 1.5 * np.pi) & (turned < LANDING_ENDS) & (tilt(qpos[:, 2]) < np.pi / 2)
    return np.clip((qpos[:, 1] - floor) / (1.1 - floor), 0.0, 1.0) * over


def flip_then_rise(clip: Clip) -> np.ndarray:
    """`flip_progress` plus pay for getting up once the hopper has turned past face down (three quarters of a turn,
    up to the end of `flip_progress`'s landing): the torso's height, 0 at 0.3 m to RISE_PAY at 1.1 m, while the torso
    points up. Under `flip_progress` PPO turned over and then sat or crouched near upright at 0.2 to 0.7 m, short of
    the 0.8 m `count_backflips` calls standing (README.md, twelfth round): nothing paid the last part of the way up."""
    qpos, _ = clip_states(clip, HOPPER_NQ)
    return flip_progress(clip) + RISE_PAY * _rise(qpos, floor=0.3)


def flip_then_stand(clip: Clip) -> np.ndarray:
    """`flip_then_rise` with the height paid from the floor up (0 m), not from 0.3 m: under `flip_then_rise` PPO sat
    upright after the turn at 0.25 m, where the height earned nothing and so showed no way up (README.md, twelfth
    round)."""
    qpos, _ = clip_states(clip, HOPPER_NQ)
    return flip_progress(clip) + RISE_PAY * _rise(qpos, floor=0.0)


def one_flip(clip: Clip) -> np.ndarray:
    """A teacher who wants one backflip and then standing, as tried in session 26 (its runs' config.json names it):
    `every_turn_pays`'s rotation paid during the first whole turn only, standing after it paid LANDED_STANDING a step,
    lying and hanging upside down charged 0.05 a step. Under `every_turn_pays`, PPO trained with `fallen_starts` learned
    to get up and then tumbled on, each further turn paid as the first (README.md, thirteenth round); here a second
    turn earns nothing and landing is the only way to earn more after the first. Shipped as the env's score in
    sessions 27 and 28; since session 29 the env's score pays the turn only in the air and pays the jump."""
    return backflip_score(clip, air_only=False, jump_pay=0.0)


def one_flip_or_nothing(clip: Clip) -> np.ndarray:
    """`one_flip` with every step before the first whole turn charged as lying is (0.05), standing still included:
    a teacher who is shown a hopper standing and wants a flip. Under `one_flip` the preference models paid
    standing before a flip (which scores 0, a step above lying) as much as or more than standing after one (0.1):
    they learned "upright and tall is good" from the many pairs of standing against lying, and few clips showed
    a landing (README.md, thirteenth round). Here standing before the turn scores as lying does, so upright pays
    only after a flip, and the fast turn still pays more than its charge."""
    return backflip_score(clip, waiting_cost=0.05, air_only=False, jump_pay=0.0)


def air_flip(clip: Clip, jump_pay: float = 0.0, air_only: bool = True) -> np.ndarray:
    """One flip made in the air, then standing (session 28, fifteenth round): `one_flip` with the backward rotation
    paid only while the whole body is off the floor (with `air_only`; else where `one_flip` pays it, the torso above
    0.6 m), and, with `jump_pay`, that much a step per metre of clearance before the first whole turn. A lean back
    on the foot, which `one_flip` pays up to about a quarter turn, earns nothing here. Since session 29 the env's
    `backflip_score` takes these as parameters."""
    return backflip_score(clip, air_only=air_only, jump_pay=jump_pay)


def air_flip_jump(clip: Clip) -> np.ndarray:
    """`air_flip` with the jump paid (JUMP_PAY, 0.3 a step per metre of clearance, before the flip): the env's
    `backflip_score` since session 29."""
    return backflip_score(clip)


def one_flip_jump(clip: Clip) -> np.ndarray:
    """`one_flip` with the jump paid as in `air_flip_jump` (rotation paid where the torso is above 0.6 m)."""
    return air_flip(clip, jump_pay=JUMP_PAY, air_only=False)
