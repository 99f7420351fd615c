"""How well a run's learned reward tracks the backflip score on someone else's flips.

    cd research/backflip
    python backflip_reward_check.py /tmp/ppo_on_score /tmp/pref_run_a /tmp/pref_run_b --seeds 1 10000 10001

The first run's agent (one that flips, e.g. PPO on the score) acts deterministically for one episode per seed
in prefrl/HopperBackflip-v0. Each later run's reward model scores those steps (a run that trained on another
run's model held fixed, `--reward-from`, is checked with that model), in the observation of the env that run
trained on (a variant such as backflip_variants:hopper_sin_cos sees the same states through its own
wrapper). Printed per seed: the episode's backward turns and landed flips, and for each reward model
- `corr`: the correlation between its sum and the score's sum over 50-step windows (README.md, fifth
  round);
- `vs_standing`: the whole episode against standing still all episode, in units of the gap between standing
  and lying, by the model and (`score_vs_standing`) by the shipped score (seventh round). Standing and lying
  are the first 100 and last 300 steps of a hopper given no action, which stands, then falls.
- with `--gamma G`: `disc_vs_standing`, the same summed from the episode's first step with weights G^t, as PPO
  with discount G values the episode from its start, by the model and (`score_disc_vs_standing`) by the score
  (ninth round: the score pays a failed flip about what a lean earns, the models less).

With `--own`, each model also scores its own run's final agent on the same seeds (`own_vs_standing`, and with
`--gamma` `own_disc_vs_standing`): does the model pay the flipper's episode more than what its own agent does?
`--best` plays the flipper's agent of its best evaluation. The flipper may have trained on any env with
HopperBackflip-v0's observations (e.g. with practice starts); it acts in HopperBackflip-v0.

`--teacher-score package.module:function` measures against that score instead of the shipped one, e.g.
`backflip_variants:no_hang`; its standing-to-lying gap is taken as the shipped score's (SCORE_GAP).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
from backflip_frames import agent_in, run_env

from prefrl.checkpoint import load_reward_model
from prefrl.core.data import Clip
from prefrl.core.loading import load_callable
from prefrl.core.reward.model import RewardEnsemble
from prefrl.envs.backflip import HOPPER_NQ, backflip_score, landed_backflips
from prefrl.gym.environments import make_env
from prefrl.gym.evaluation import episode_clips

WINDOW = 50
FLIPPER_ENV = "prefrl/HopperBackflip-v0"
SCORE_GAP = 0.05
"""The score's standing-to-lying gap a step: what the shipped score, and every backflip_variants score, charges
for lying while standing before a flip pays nothing."""


def reward_model_of(run: Path) -> tuple[RewardEnsemble, gym.Env]:
    """The run's reward model as last saved (for a run that trained on another's held fixed, `--reward-from`,
    that model), and the env (in that run's observation) it was trained on."""
    env = make_env(run_env(run))
    return load_reward_model(run, env.observation_space, env.action_space), env


def window_sums(per_step: np.ndarray) -> np.ndarray:
    """Sums over consecutive WINDOW-step windows (a last, shorter window is dropped)."""
    windows = len(per_step) // WINDOW
    return per_step[: windows * WINDOW].reshape(windows, WINDOW).sum(1)


def observe(env: gym.Env, obs: np.ndarray) -> np.ndarray:
    """HopperBackflip-v0 observations as `env` (the env itself, or an observation wrapper of it) shows them."""
    return np.stack([env.observation(o) for o in obs]) if isinstance(env, gym.ObservationWrapper) else obs


class NoAction:
    """Stands in for an agent: zero torque, so the hopper stands for a while, then falls and lies."""

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return np.zeros(3), None


def standing_and_lying(model: RewardEnsemble, env: gym.Env, idle: Clip) -> tuple[float, float]:
    """The model's reward a step for standing (first 100 steps of `idle`) and for lying (its last 300)."""
    r = model.reward(observe(env, idle.obs), idle.acts)
    return float(r[:100].mean()), float(r[-300:].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("flipper", type=Path, help="run whose agent makes the episodes")
    parser.add_argument("models", nargs="+", type=Path, help="runs whose reward models are checked")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 10_000, 10_001])
    parser.add_argument("--gamma", type=float, help="also compare the episodes discounted with this gamma")
    parser.add_argument("--teacher-score", help="package.module:function to measure against (default: shipped)")
    parser.add_argument("--best", action="store_true", help="the flipper's agent of its best evaluation")
    parser.add_argument("--own", action="store_true",
                        help="also score each model's own run's final agent on the same seeds (`own_...`)")
    args = parser.parse_args()
    step_score = load_callable(args.teacher_score, "score function") if args.teacher_score else backflip_score
    if make_env(run_env(args.flipper)).observation_space.shape != make_env(FLIPPER_ENV).observation_space.shape:
        parser.error(f"{args.flipper} trained on {run_env(args.flipper)}: the flipper must see {FLIPPER_ENV}'s "
                     "observations, which the reward models' envs are given")
    agent, outer = agent_in(args.flipper, FLIPPER_ENV, best=args.best)
    models = {str(run): reward_model_of(run) for run in args.models}
    own = {str(run): agent_in(run, FLIPPER_ENV) for run in args.models} if args.own else {}
    idle = next(episode_clips(NoAction(), outer, FLIPPER_ENV, 1, 0))  # type: ignore[arg-type]
    anchors = {name: standing_and_lying(model, env, idle) for name, (model, env) in models.items()}
    for seed in args.seeds:
        clip = next(episode_clips(agent, outer, FLIPPER_ENV, 1, seed))
        assert clip.states is not None
        angle = clip.states[:, 2]
        score = np.asarray(step_score(clip), dtype=float)
        steps = len(score)
        weights = args.gamma ** np.arange(steps) if args.gamma else None
        row: dict[str, object] = {"seed": seed, "backward_turns": round(-(angle[-1] - angle[0]) / (2 * math.pi), 1),
                                  "landed": len(landed_backflips(clip.states[:, :HOPPER_NQ])),
                                  "score_vs_standing": round(float(score.sum()) / (steps * SCORE_GAP), 2)}
        if weights is not None:
            row["score_disc_vs_standing"] = round(float(score @ weights) / SCORE_GAP, 1)
        for name, (model, env) in models.items():
            learned = model.reward(observe(env, clip.obs), clip.acts)
            stand, lie = anchors[name]
            check = {"corr": round(float(np.corrcoef(window_sums(score), window_sums(learned))[0, 1]), 2),
                     "vs_standing": round((float(learned.sum()) - steps * stand) / (steps * (stand - lie)), 2)}
            if weights is not None:
                check["disc_vs_standing"] = round(float((learned - stand) @ weights) / (stand - lie), 1)
            if name in own:
                mine = next(episode_clips(*own[name], FLIPPER_ENV, 1, seed))
                learned_mine = model.reward(observe(env, mine.obs), mine.acts)
                mine_steps = len(learned_mine)
                check["own_vs_standing"] = round((float(learned_mine.sum()) - mine_steps * stand)
                                                 / (mine_steps * (stand - lie)), 2)
                if weights is not None:
                    check["own_disc_vs_standing"] = round(float((learned_mine - stand) @ weights) / (stand - lie), 1)
            row[name] = check
        print(json.dumps(row))


if __name__ == "__main__":
    main()
