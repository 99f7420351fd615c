"""What each HalfCheetah reward model pays for speed and charges for control, on one shared set of states.

    python research/squares/cost_terms.py RUN [RUN ...]

For every run given: its final agent plays 2 episodes deterministically and 2 stochastically, and one episode of
uniform-random actions is added; all steps of all runs are pooled. Then each run's reward model (normalised, as the
agent sees it) is regressed on [x velocity, 0.1 * sum(a^2), 1], HalfCheetah-v5's reward being velocity minus that
control cost: the ratio of the two coefficients is what the model charges for a unit of control cost in units of
what it pays for a unit of speed (the true reward: 1.0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from prefrl.checkpoint import load_agent, load_reward_model
from prefrl.core.data import Clip
from prefrl.gym.environments import make_env
from prefrl.gym.evaluation import UniformRandom, episode_clips
from prefrl.run_dir import RunDir

ENV = "HalfCheetah-v5"
CONTROL_COST_WEIGHT = 0.1  # HalfCheetah-v5's: reward = x velocity - 0.1 * sum(a^2)


def main(runs: list[Path]) -> None:
    env = make_env(ENV)
    clips: list[Clip] = list(episode_clips(UniformRandom(env.action_space, 100), None, ENV, 1, 100))  # type: ignore[arg-type]
    for run in runs:
        agent, outer = load_agent(RunDir(run))
        clips += episode_clips(agent, outer, ENV, 2, 200)
        clips += episode_clips(agent, outer, ENV, 2, 300, deterministic=False)
    obs = np.concatenate([c.obs for c in clips]).astype(np.float32)
    acts = np.concatenate([c.acts for c in clips]).astype(np.float32)
    ctrl = CONTROL_COST_WEIGHT * (acts ** 2).sum(1)
    vel = np.concatenate([c.true_rewards for c in clips]) + ctrl
    print(f"{len(obs)} steps; velocity mean {vel.mean():.2f} sd {vel.std():.2f}; control cost mean {ctrl.mean():.3f}")
    print("| run | corr(r, true reward) | pay per unit of speed | charge per unit of control cost "
          "| charge / pay (true 1.0) | R² |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        model = load_reward_model(run, env.observation_space, env.action_space)
        reward = np.concatenate([model.reward(obs[i:i + 4096], acts[i:i + 4096]) for i in range(0, len(obs), 4096)])
        design = np.stack([vel, ctrl, np.ones_like(vel)], 1)
        coef, *_ = np.linalg.lstsq(design, reward, rcond=None)
        r2 = 1 - ((reward - design @ coef) ** 2).sum() / ((reward - reward.mean()) ** 2).sum()
        corr = np.corrcoef(reward, vel - ctrl)[0, 1]
        print(f"| {run.parent.name}/{run.name} | {corr:.3f} | {coef[0]:.3f} | {-coef[1]:.3f} | "
              f"{-coef[1] / coef[0]:.2f} | {r2:.3f} |")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
