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
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from prefrl.checkpoint import load_agent, load_reward_model
from prefrl.gym.environments import make_env
from prefrl.run_dir import RunDir

ENV = "HalfCheetah-v5"


def play(run: Path | None, episodes: int, deterministic: bool, seed: int) -> tuple[np.ndarray, ...]:
    """(observations, actions, x velocities) of `episodes` episodes of the run's agent (None: random actions)."""
    env = make_env(ENV)
    obs_rows, act_rows, vel_rows = [], [], []
    agent = outer = None
    if run is not None:
        agent, outer = load_agent(RunDir(run), DummyVecEnv([lambda: make_env(ENV)]))
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            if agent is None:
                act = env.action_space.sample()
            else:
                seen = outer.normalize_obs(obs[None]) if isinstance(outer, VecNormalize) else obs[None]
                act = np.clip(agent.predict(seen, deterministic=deterministic)[0][0], -1, 1)
            next_obs, _, terminated, truncated, info = env.step(act)
            obs_rows.append(obs)
            act_rows.append(act)
            vel_rows.append(info["x_velocity"])
            obs, done = next_obs, terminated or truncated
    return np.array(obs_rows), np.array(act_rows, dtype=np.float32), np.array(vel_rows)


def main(runs: list[Path]) -> None:
    data = [play(None, 1, False, 100)]
    for run in runs:
        data += [play(run, 2, True, 200), play(run, 2, False, 300)]
    obs, acts, vel = (np.concatenate([d[k] for d in data]) for k in range(3))
    ctrl = 0.1 * (acts ** 2).sum(1)
    print(f"{len(obs)} steps; velocity mean {vel.mean():.2f} sd {vel.std():.2f}; control cost mean {ctrl.mean():.3f}")
    print("| run | corr(r, true reward) | pay per unit of speed | charge per unit of control cost "
          "| charge / pay (true 1.0) | R² |")
    print("|---|---|---|---|---|---|")
    env = make_env(ENV)
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
