"""Replay run agents on fresh episodes and check each landed flip: made in the air, or a roll on the floor?

    cd research/backflip
    python air_flips.py RUN... [--best] [--episodes 10] [--seed 20000]

For each run the final agent (with `--best`: the agent of its best evaluation) acts deterministically in
prefrl/HopperBackflip-v0 as registered (evaluations' episodes: from standing, 1,000 steps) on `--episodes` fresh
episodes. Printed, one JSON line a run: landed flips per episode (prefrl.envs.backflip.landed_backflips), the flips
with any step lying (none should have: lying ends a turn), and the lowest point of the body while the torso is upside
down in each of the first eight flips (a flip in the air keeps it above the floor). This is the check behind the
README's "flips in N of 10 fresh episodes" since session 29 (before session 31 a scratch script did the same).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from backflip_frames import ENV, agent_in

from prefrl.envs.backflip import HOPPER_NQ, clearance, landed_backflips, lying, tilt
from prefrl.gym.evaluation import episode_clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--best", action="store_true")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20000)
    args = parser.parse_args()
    for run in args.runs:
        agent, outer = agent_in(run, ENV, best=args.best)
        flips, lowest, with_lying = [], [], 0
        for clip in episode_clips(agent, outer, ENV, args.episodes, args.seed):
            qpos = clip.states[:, :HOPPER_NQ]
            landed = landed_backflips(qpos)
            flips.append(len(landed))
            for began, turned in landed:
                part = qpos[began: turned + 1]
                upside_down = tilt(part[:, 2]) > math.pi / 2
                with_lying += int(lying(part).any())
                if upside_down.any():
                    lowest.append(round(float(clearance(part[upside_down]).min()), 2))
        print(json.dumps({"run": str(run), "best": args.best, "flips": flips,
                          "episodes_with_flip": sum(n > 0 for n in flips), "flips_with_lying": with_lying,
                          "lowest_upside_down": lowest[:8]}), flush=True)


if __name__ == "__main__":
    main()
