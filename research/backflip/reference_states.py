"""Record the states of a flipper's landed flips, for reference starts (`backflip_variants:hopper_reference_starts`).

    cd research/backflip
    python reference_states.py RUN --episodes 20 --seed 30000 --out reference.npz

The run's final agent (with `--best`: its best evaluation's) acts deterministically in prefrl/HopperBackflip-v0 for
`--episodes` fresh episodes. Each landed flip (prefrl.envs.backflip.landed_backflips) is kept from `--before` steps
before it began to `--after` steps after its whole turn, with the torso's unwrapped angle shifted by whole turns so
that the flip starts within the first turn (a second flip in an episode is then paid like a first). The file holds
`qpos` and `qvel` (one row a state) and `flip` (which flip each row belongs to).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from backflip_frames import ENV, agent_in

from prefrl.envs.backflip import HOPPER_NQ, flip_segments
from prefrl.gym.evaluation import episode_clips


def save_flips(segments: list[np.ndarray], out: Path) -> None:
    """Save flips' states (qpos|qvel rows, one array a flip) as a reference file: `qpos`, `qvel` and `flip` (which
    flip each row belongs to)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = np.concatenate(segments) if segments else np.zeros((0, 2 * HOPPER_NQ))
    np.savez_compressed(out, qpos=rows[:, :HOPPER_NQ], qvel=rows[:, HOPPER_NQ:],
                        flip=np.concatenate([np.full(len(s), k) for k, s in enumerate(segments)] or [np.zeros(0)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--best", action="store_true")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=30000)
    parser.add_argument("--before", type=int, default=20)
    parser.add_argument("--after", type=int, default=40)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    agent, outer = agent_in(args.run, ENV, best=args.best)
    segments = []
    for clip in episode_clips(agent, outer, ENV, args.episodes, args.seed):
        segments += flip_segments(np.asarray(clip.states), args.before, args.after)
    if not segments:
        raise SystemExit(f"{args.run}: no landed flip in {args.episodes} episodes; record a run whose agent flips")
    save_flips(segments, args.out)
    print(json.dumps({"run": str(args.run), "flips": len(segments), "states": sum(len(s) for s in segments),
                      "steps_per_flip": [len(s) for s in segments][:10]}))


if __name__ == "__main__":
    main()
