"""Labelled comparisons of clips from agents you already have, for `prefrl import`: show a reward model
behaviour its own run has not reached yet (README.md, seventh round).

    cd research/backflip
    python seed_labels.py RUN [RUN ...] --out seed.jsonl --pairs 400 \\
        [--teacher-score package.module:function] [--teacher stochastic --beta 1] [--episodes 5]
    prefrl import seed.jsonl runs/new
    prefrl train --out runs/new --teacher-score ... --teacher stochastic --labels 4000  # learns from them, then asks

Each run's final agent acts deterministically for `--episodes` episodes, and random actions fill
`--random-episodes` more. The episodes are cut into clips of `--clip-length` steps every `--stride` steps,
and `--pairs` random pairs of them are answered on the score (the env's reward when there is no score) by
`--teacher`: the oracle, or a stochastic teacher with `--beta`, which lets the model learn how much better a
clip is and not only which (README.md, eighth round). Use the teacher the run will use. The clips keep
their MuJoCo states, so the labelling window can draw them.

The labels are for runs of the env the agents trained on, or of `--for-env ENV`, a variant that observes the same
states, e.g. `backflip_variants:hopper_cut_when_lying` (README.md, tenth round).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from backflip_frames import agent_in, run_env

from prefrl.config import TeacherConfig
from prefrl.core.data import Clip
from prefrl.core.dataset import export_labels
from prefrl.core.store import PreferenceStore
from prefrl.core.teachers import ScriptedTeacher, answer_pending
from prefrl.gym.environments import make_env, score_functions
from prefrl.gym.evaluation import episode_clips


class RandomActions:
    """Stands in for an agent: uniform random actions."""

    def __init__(self, space, seed: int) -> None:  # type: ignore[no-untyped-def]
        self.space = space
        self.space.seed(seed)

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return self.space.sample(), None


def cut(episode: Clip, per_step: np.ndarray, length: int, stride: int, number: int) -> list[Clip]:
    """Clips of `length` steps every `stride` steps of one episode, scored by `per_step`."""
    return [Clip(obs=episode.obs[s: s + length], acts=episode.acts[s: s + length],
                 true_rewards=per_step[s: s + length].astype(np.float32), states=None if episode.states is None
                 else episode.states[s: s + length], episode=number, start=s)
            for s in range(0, len(episode.obs) - length + 1, stride)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--teacher-score")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--random-episodes", type=int, default=3)
    parser.add_argument("--clip-length", type=int, default=150)
    parser.add_argument("--stride", type=int, default=25)
    parser.add_argument("--seed", type=int, default=20_000)
    parser.add_argument("--for-env", help="label the export for runs of this env id (one with the same observation)")
    parser.add_argument("--teacher", choices=["oracle", "stochastic", "mistake", "equal"], default="oracle")
    parser.add_argument("--beta", type=float, default=TeacherConfig.beta,
                        help="stochastic: P(left) = sigmoid(beta * (R_left - R_right))")
    parser.add_argument("--epsilon", type=float, default=TeacherConfig.epsilon,
                        help="mistake: chance of a flipped answer")
    parser.add_argument("--equal-threshold", type=float, default=TeacherConfig.equal_threshold,
                        help='equal: returns this close are answered "equal"')
    args = parser.parse_args()

    env_id = run_env(args.runs[0])
    probe = make_env(env_id)
    step_score, _ = score_functions(probe, args.teacher_score)
    episodes: list[Clip] = []
    for run in args.runs:
        if run_env(run) != env_id:
            raise SystemExit(f"{run} trained on {run_env(run)}, not {env_id}: seed from runs of one env")
        agent, outer = agent_in(run)
        episodes += episode_clips(agent, outer, env_id, args.episodes, args.seed)
    episodes += episode_clips(RandomActions(probe.action_space, args.seed), None, env_id,  # type: ignore[arg-type]
                              args.random_episodes, args.seed)
    clips = [c for k, ep in enumerate(episodes)
             for c in cut(ep, step_score(ep) if step_score else ep.true_rewards, args.clip_length, args.stride, k)]
    if len(clips) < 2:
        raise SystemExit(f"episodes shorter than --clip-length {args.clip_length}: give a shorter one")

    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:  # a scratch store: the oracle answers there, then it is exported
        store = PreferenceStore(Path(tmp) / "prefs.sqlite", env_id=args.for_env or env_id)
        ids = [store.add_clip(c) for c in clips]
        for _ in range(args.pairs):
            a, b = rng.choice(len(ids), size=2, replace=False)
            store.add_query(ids[a], ids[b], env_step=0)
        params = TeacherConfig(beta=args.beta, epsilon=args.epsilon, equal_threshold=args.equal_threshold)
        answer_pending(store, ScriptedTeacher(args.teacher, params, rng))
        n = export_labels(store, args.out)
    print(f"{n} labelled pairs of {len(clips)} clips from {len(episodes)} episodes -> {args.out}; "
          f"now: prefrl import {args.out} RUN_DIR")


if __name__ == "__main__":
    main()
