r"""Can the Hopper flip in the air at all? Search open-loop torques from standing with the cross-entropy method.

    cd research/backflip
    python open_loop_flip.py --iterations 40 --seed 0            # jump first: the score pays clearance
    python open_loop_flip.py --iterations 40 --seed 1 --start runs/open_loop_jump.npy --jump-pay 0

The torques are KNOTS knots per joint over the first STEPS steps, linearly interpolated, zero after; each candidate
plays one episode of HORIZON steps from the env's standing start (seed 0) and is scored by `air_flip` (the turn paid
only off the floor, then standing; `--jump-pay` adds clearance). After each batch the best `--elite` make the next
mean. Prints, every 5 iterations, the mean's episode: landed flips as prefrl/HopperBackflip-v0 counts them (lying
ends a turn, so only a turn made without lying counts), the lowest angle, the highest clearance. Saves the mean to
`--save` (README.md, fifteenth round).

    python open_loop_flip.py --iterations 50 --seed 13 --start runs/open_loop_jump.npy --jump-pay 0 --land-pay 5 \
        --archive runs/open_loop_archive.npz

`--land-pay` adds to the search's score that much for ending a whole turn back and for standing at the end;
`--archive` saves every landed flip any candidate made (from 20 steps before it to 40 after) as reference starts for
the env's `reference_starts` option (`reference FILE`): a reference with no agent behind it (README.md, nineteenth
round). Those flips all touched the floor before upside down: the torques stop at step 120, so the body goes limp in
the air. Spread over the flight (`--knots 20 --steps 200`) and archived with `--air-only` (no step lying in the
turn), the search finds flips in the air; `--touch-charge` charges each step lying before upside down, and `--png`
with `--iterations 0` draws a saved mean's flip (README.md, twentieth round):

    python open_loop_flip.py --iterations 30 --seed 33 --knots 20 --steps 200 --save runs/jump-33.npy \
        --archive runs/archive-jump-33.npz --air-only

`--reward-from RUN` scores each candidate by RUN's learned reward (its reward model as last saved, summed over the
episode) instead of the score: a search on what a run's labels taught, with no score (README.md, twenty-first
round). `--land-pay` and `--touch-charge` still add their terms; `--jump-pay` is unused:

    python open_loop_flip.py --iterations 30 --seed 52 --knots 20 --steps 200 --reward-from PACED_RUN \
        --save runs/learned-52.npy --archive runs/archive-learned-52.npz --air-only
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from backflip_frames import draw
from backflip_reward_check import observe, reward_model_of
from backflip_variants import air_flip
from reference_states import save_flips

from prefrl.core.data import Clip
from prefrl.envs.backflip import HOPPER_NQ, clearance, flip_segments, landed_backflips, lying, standing
from prefrl.errors import PrefrlError
from prefrl.gym.environments import make_env

KNOTS, STEPS, HORIZON = 12, 120, 300


def play(env, knots: np.ndarray, steps: int = STEPS) -> Clip:
    """One episode under the open-loop torques `knots` (knots x 3) spread over the first `steps` steps: each step's
    state (qpos|qvel), observation and torque."""
    grid = np.linspace(0, steps - 1, len(knots))
    torques = np.clip(np.stack([np.interp(np.arange(steps), grid, knots[:, j]) for j in range(3)], 1), -1, 1)
    obs, _ = env.reset(seed=0)
    data, states, seen, acts = env.unwrapped.data, [], [], []
    for t in range(HORIZON):
        states.append(np.r_[data.qpos, data.qvel])
        seen.append(obs)
        acts.append(torques[t] if t < steps else np.zeros(3))
        obs = env.step(acts[-1])[0]
    return Clip(obs=np.array(seen), acts=np.array(acts), true_rewards=np.zeros(HORIZON), states=np.array(states))


def score(clip: Clip, jump_pay: float, land_pay: float = 0.0, touch_charge: float = 0.0,
          learned: Callable[[Clip], np.ndarray] | None = None) -> float:
    """`air_flip` summed over the episode (with `learned`, a learned reward of each step summed instead and
    `jump_pay` unused: what a run's labels taught, no score); with `land_pay`, plus that much for each of: how near
    the torso ends to one whole turn back (1 at the turn, 0 a whole turn away; a turn through the floor is folded
    back by the env, so it ends far), and the share of the last 60 steps standing; with `touch_charge`, less that
    much for each step lying before the torso first passes upside down (the env folds the angle only past it, so
    such a touch does not end the turn in its count, and every flip the search found with `land_pay` alone touched
    the floor there)."""
    states = clip.states
    assert states is not None
    if learned is not None:
        paid = float(learned(clip).sum())
    else:
        paid = float(air_flip(clip, jump_pay=jump_pay).sum())
    if land_pay:
        qpos = states[:, :HOPPER_NQ]
        near = max(0.0, 1 - abs(qpos[-1, 2] + 2 * np.pi) / (2 * np.pi))
        paid += land_pay * (near + float(standing(qpos[-60:]).mean()))
    if touch_charge:
        over = np.flatnonzero(states[:, 2] < -np.pi)  # the torso's angle past upside down
        before = states[: over[0] if len(over) else len(states), :HOPPER_NQ]
        paid -= touch_charge * float(lying(before).sum())
    return paid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--population", type=int, default=60)
    parser.add_argument("--elite", type=int, default=8, help="how many of the best make the next mean")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jump-pay", type=float, default=0.3)
    parser.add_argument("--land-pay", type=float, default=0.0, help="pay ending a whole turn back and standing")
    parser.add_argument("--knots", type=int, default=KNOTS,
                        help="torque knots per joint (with --start, the saved mean's)")
    parser.add_argument("--steps", type=int, default=STEPS, help="steps the torques span (zero after)")
    parser.add_argument("--start", type=Path, help="a saved mean to start from (spread 0.4 instead of 0.8)")
    parser.add_argument("--save", type=Path, default=Path("runs/open_loop_jump.npy"))
    parser.add_argument("--touch-charge", type=float, default=0.0,
                        help="charge each step lying before the torso first passes upside down")
    parser.add_argument("--archive", type=Path, help="save the flips every candidate of the search landed (.npz)")
    parser.add_argument("--air-only", action="store_true", help="archive only flips with no step lying in the turn")
    parser.add_argument("--png", type=Path, help="draw the final mean's first landed flip as a strip of frames")
    parser.add_argument("--reward-from", type=Path,
                        help="search on this run's learned reward (its last saved reward model) instead of the score")
    args = parser.parse_args()
    learned = None
    if args.reward_from:
        try:
            model, model_env = reward_model_of(args.reward_from)
        except FileNotFoundError as e:  # no config.json there: not a run
            parser.error(f"--reward-from {args.reward_from}: {e}: give the directory of a run that learned its reward")
        except PrefrlError as e:  # a run, but no model to read (its message names the fix)
            parser.error(str(e))
        learned = lambda clip: model.reward(observe(model_env, clip.obs), clip.acts)  # noqa: E731
    env = make_env("prefrl/HopperBackflip-v0")
    rng = np.random.default_rng(args.seed)
    mean = np.load(args.start) if args.start else np.zeros((args.knots, 3))
    spread = np.full(mean.shape, 0.4 if args.start else 0.8)
    found: list[np.ndarray] = []  # every landed flip any candidate made, for --archive
    for it in range(args.iterations):
        batch = mean + spread * rng.standard_normal((args.population, *mean.shape))
        played = [play(env, k, args.steps) for k in batch]
        scores = np.array([score(clip, args.jump_pay, args.land_pay, args.touch_charge, learned) for clip in played])
        if args.archive:
            for clip in played:
                found += flip_segments(clip.states, before=20, after=40, in_the_air=args.air_only)
        elite = batch[np.argsort(scores)[-args.elite:]]
        mean, spread = elite.mean(0), elite.std(0) + 0.05
        if it % 5 == 4 or it == args.iterations - 1:
            clip = play(env, mean, args.steps)
            qpos = clip.states[:, :HOPPER_NQ]
            paid = score(clip, args.jump_pay, args.land_pay, args.touch_charge, learned)
            print(f"iteration {it + 1}: best {scores.max():.1f}, mean's score {paid:.1f}, "
                  f"landed flips {landed_backflips(qpos)}, lowest angle {qpos[:, 2].min():.2f}, "
                  f"highest clearance {clearance(qpos).max():.2f} m, steps lying {int(lying(qpos).sum())}", flush=True)
    if args.iterations:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        np.save(args.save, mean)
    if args.archive:
        save_flips(found, args.archive)
        print(f"{len(found)} landed flips among the candidates: {args.archive}")
    if args.png:  # with --iterations 0, the --start mean's flip
        states = play(env, mean, args.steps).states
        flips = landed_backflips(states[:, :HOPPER_NQ])
        if not flips:
            raise SystemExit("the mean lands no flip to draw")
        began, turned = flips[0]
        draw(states, [int(t) for t in np.linspace(max(began - 10, 0), min(turned + 30, HORIZON - 1), 10)], args.png)
        print(f"frames of the flip from step {began} to {turned}: {args.png}")


if __name__ == "__main__":
    main()
