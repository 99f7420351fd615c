"""Score trained HopperBackflip agents by landed backflips, and draw one flip as a strip of frames.

    cd research/backflip
    python backflip_frames.py runs/flip1 runs/flip2 --episodes 5 --png backflip.png

For each run directory: the agent's final checkpoint acts deterministically for `--episodes` fresh
episodes; the landed backflips of each (prefrl.envs.backflip.count_backflips) are printed, with whole
backward turns. With --png, the first landed flip found is rendered as `--frames` frames side by side.

The agent acts in the env its run trained on, or in `--env ENV`: a run trained on a variant such as
`backflip_variants:hopper_cut_when_lying` (episodes end after 50 steps lying) is measured on the full 1,000-step
episodes of prefrl/HopperBackflip-v0 with `--env prefrl/HopperBackflip-v0` (the observations are the same).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from prefrl.checkpoint import load_agent
from prefrl.envs.backflip import HOPPER_NQ, landed_backflips
from prefrl.gym.environments import make_env
from prefrl.gym.evaluation import episode_clips
from prefrl.gym.render import render_env
from prefrl.gym.states import restore
from prefrl.run_dir import RunDir

ENV = "prefrl/HopperBackflip-v0"


def run_env(run: Path) -> str:
    """The env the run trained on (its config.json), e.g. a variant from backflip_variants.py."""
    return str(json.loads((run / "config.json").read_text())["env"])


def agent_in(run: Path, env_id: str | None = None, best: bool = False) -> tuple[PPO, VecEnv]:
    """The run's final agent (with `best`: the agent of its best evaluation) acting in `env_id` (by default the
    run's own env), through the run's observation normaliser: (agent, the VecEnv it acts through)."""
    env = env_id or run_env(run)
    return load_agent(RunDir(run), DummyVecEnv([lambda: make_env(env)]), best=best)


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
    parser.add_argument("--env", help="act in this env id instead of the one the run trained on")
    parser.add_argument("--best", action="store_true", help="the agent of the run's best evaluation (RUN/best)")
    args = parser.parse_args()
    drawn = args.png is None
    for run in args.runs:
        env_id = args.env or run_env(run)
        agent, outer = agent_in(run, env_id, best=args.best)
        flips, turns = [], []
        for k, clip in enumerate(episode_clips(agent, outer, env_id, args.episodes, args.seed)):
            assert clip.states is not None
            states = clip.states
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
        print(json.dumps({"run": str(run), "env": env_id, "episodes": args.episodes, "landed_backflips": flips,
                          "mean_landed": float(np.mean(flips)), "backward_turns": [round(t, 2) for t in turns]}))


if __name__ == "__main__":
    main()
