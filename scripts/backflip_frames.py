"""Score trained HopperBackflip agents by landed backflips, and draw one flip as a strip of frames.

    python scripts/backflip_frames.py runs/flip1 runs/flip2 --episodes 5 --png docs/backflip.png

For each run directory: the agent's final checkpoint acts deterministically for `--episodes` fresh
episodes; the landed backflips of each (prefrl.envs.backflip.count_backflips) are printed, with whole
backward turns. With --png, the first landed flip found is rendered as `--frames` frames side by side.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from prefrl.environments import make_env
from prefrl.envs.backflip import HOPPER_NQ, landed_backflips
from prefrl.render import render_env
from prefrl.states import capture, restore

ENV = "prefrl/HopperBackflip-v0"


def load_policy(run: Path):  # type: ignore[no-untyped-def]
    agent = PPO.load(run / "agent" / "ppo.zip", device="cpu")
    norm_path = run / "agent" / "vecnormalize.pkl"
    norm = VecNormalize.load(str(norm_path), DummyVecEnv([lambda: make_env(ENV)])) if norm_path.exists() else None

    def act(obs: np.ndarray) -> np.ndarray:
        x = norm.normalize_obs(obs[None]) if norm is not None else obs[None]
        return agent.predict(x, deterministic=True)[0][0]
    return act


def episode_states(act, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    env: gym.Env = make_env(ENV)
    obs, _ = env.reset(seed=seed)
    states, done = [capture(env)], False
    while not done:
        obs, _, terminated, truncated, _ = env.step(act(obs))
        states.append(capture(env))
        done = terminated or truncated
    env.close()
    return np.stack(states)


def draw(states: np.ndarray, steps: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env = render_env(ENV, width=240, height=240)
    env.reset(seed=0)
    fig, axes = plt.subplots(1, len(steps), figsize=(2.0 * len(steps), 2.3))
    for ax, t in zip(axes, steps):
        restore(env, states[t])
        ax.imshow(env.render())
        ax.set_title(f"step {t}", fontsize=8)
        ax.axis("off")
    env.close()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=10_000)
    parser.add_argument("--png", type=Path)
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()
    drawn = args.png is None
    for run in args.runs:
        act = load_policy(run)
        flips, turns = [], []
        for k in range(args.episodes):
            states = episode_states(act, args.seed + k)
            qpos = states[:, :HOPPER_NQ]
            landed = landed_backflips(qpos)
            flips.append(len(landed))
            turns.append(-(qpos[-1, 2] - qpos[0, 2]) / (2 * math.pi))
            if landed and not drawn:
                began, completed = landed[0]
                end = min(completed + 20, len(states) - 1)
                draw(states, [int(t) for t in np.linspace(began, end, args.frames)], args.png)
                drawn = True
                print(f"drew the flip of steps {began}-{completed} (episode {k}) into {args.png}")
        print(json.dumps({"run": str(run), "episodes": args.episodes, "landed_backflips": flips,
                          "mean_landed": float(np.mean(flips)), "backward_turns": [round(t, 2) for t in turns]}))


if __name__ == "__main__":
    main()
