"""What a learned reward says about ending an episode, on tasks where staying alive is most of the reward.

    python scripts/termination_check.py runs/suite --out docs/termination-results.jsonl

For every run directory under ROOT (laid out ENV/ARM/seedN, as the benchmark writes them), the final agent plays
--episodes evaluation episodes. For each run that learned its reward, the reward model scores every step they
took (on the agent's scale: normalised over recent behaviour, as the agent received it) and its absorbing state (what
every step after a termination is worth). Printed per run: how often and how soon episodes ended by termination (not
the time limit), the learned reward of the absorbing state, the mean learned reward of the steps the agent lived,
and the share of those steps worth less than the absorbing state. Ending an episode is unattractive when the
absorbing state is worth less than living: a positive margin (live mean - absorbing), and a share near 0.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from prefrl.checkpoint import has_agent, load_agent, load_reward_model
from prefrl.errors import exit_status
from prefrl.gym.environments import episode_limit, make_env
from prefrl.gym.evaluation import episode_clips
from prefrl.interfaces.benchmark import benchmark_runs


@dataclass(frozen=True)
class Args:
    root: tyro.conf.Positional[Path]
    """A benchmark's run directories (its --out)."""
    episodes: int = 5
    """Evaluation episodes the final agent plays per run."""
    out: Path | None = None
    """Append one JSON row per run to this file."""


def check_run(path: Path, env_id: str, episodes: int, seed: int) -> dict[str, float]:
    """Termination and the learned reward's view of it for the final agent of the run at `path`."""
    from prefrl.run_dir import RunDir

    run = RunDir(Path(path))
    agent, outer = load_agent(run)
    probe = make_env(env_id)
    limit = episode_limit(probe)
    clips = list(episode_clips(agent, outer, env_id, episodes, seed + 20_000))
    lengths = np.array([c.length for c in clips])
    ended = np.array([limit is None or c.length < limit for c in clips])
    row: dict[str, float] = {"episodes": len(clips), "terminated_share": float(ended.mean()),
                             "mean_length": float(lengths.mean()),
                             "true_return": float(np.mean([c.true_return for c in clips]))}
    if (run.reward_model / "model.pt").exists() and json.loads(run.config.read_text()).get("reward") == "learned":
        model = load_reward_model(run.path, probe.observation_space, probe.action_space)
        with torch.no_grad():
            live = np.concatenate([model.reward(c.obs, c.acts) for c in clips])
        absorbing = model.absorbing_reward()
        row.update({"absorbing_reward": absorbing, "live_mean": float(live.mean()),
                    "margin": float(live.mean() - absorbing), "live_below_absorbing": float((live < absorbing).mean())})
    probe.close()
    return row


def main(args: Args) -> int:
    runs = [b for b in benchmark_runs(args.root) if has_agent(b.run)]
    if not runs:
        print(f"error: no run with a saved agent under {args.root} (laid out ENV/ARM/seedN): give a benchmark's --out",
              file=sys.stderr)
        return 2
    print("| env | arm | seed | terminated | mean length | true return | absorbing | live mean | margin | "
          "live steps below absorbing |\n|---|---|---|---|---|---|---|---|---|---|")
    for b in runs:
        env_id = json.loads(b.run.config.read_text())["env"]
        r = check_run(b.run.path, env_id, args.episodes, b.seed)
        cells = [f"{r[k]:.2f}" if not math.isnan(r.get(k, math.nan)) else "–"
                 for k in ("absorbing_reward", "live_mean", "margin", "live_below_absorbing")]
        print(f"| {env_id} | {b.arm} | {b.seed} | {r['terminated_share']:.0%} | {r['mean_length']:.0f} | "
              f"{r['true_return']:.0f} | " + " | ".join(cells) + " |")
        if args.out is not None:
            with args.out.open("a") as f:
                f.write(json.dumps({"env": env_id, "arm": b.arm, "seed": b.seed, **r}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args, description=__doc__))))
