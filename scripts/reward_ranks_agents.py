"""Does a run's learned reward rank agents as the true reward does?

    python scripts/reward_ranks_agents.py RUN --agents AGENT_RUN [AGENT_RUN ...] --episodes 3

RUN holds the reward model (its last save). RUN's own final agent, then each AGENT_RUN's (a run of the same
env, e.g. the true-reward arm of a benchmark), plays `--episodes` deterministic episodes of RUN's env. For each
agent the script prints the means of:
- its true return and episode length;
- its return under the learned reward, with the absorbing state's reward for every step an early termination
  cut off: what a preference-trained agent is taught to expect from falling;
- the per-step correlation of learned and true reward over its episodes.

When the learned reward ranks another agent, better on the true reward, above the run's own agent, the reward
was not what held the run back: its agent did not find what the reward already pays for. docs/benchmarks.md
uses it that way.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tyro
from stable_baselines3.common.vec_env import DummyVecEnv

from prefrl.checkpoint import load_agent, load_reward_model
from prefrl.core.data import Clip
from prefrl.core.reward.model import RewardEnsemble
from prefrl.errors import PrefrlError, exit_status
from prefrl.gym.environments import episode_limit, make_env
from prefrl.gym.evaluation import episode_clips
from prefrl.run_dir import RunDir


@dataclass(frozen=True)
class Args:
    run: tyro.conf.Positional[Path]
    """Run whose reward model (its last save) scores the agents."""
    agents: list[Path] = field(default_factory=list)
    """Other runs of the same env whose final agents are scored too."""
    episodes: int = 3
    """Deterministic episodes per agent."""
    seed: int = 1000
    """Seed of the first episode."""


@dataclass(frozen=True)
class Scores:
    true_return: float
    length: float
    learned_return: float
    correlation: float


def learned_return(model: RewardEnsemble, clip: Clip, limit: int | None) -> float:
    """The episode's return under the learned reward; one that ended before `limit` steps also gets the absorbing
    state's reward for each step it did not play."""
    lost = limit - clip.length if limit is not None and clip.length < limit else 0
    return float(model.reward(clip.obs, clip.acts).sum()) + lost * model.absorbing_reward()


def run_env(run: Path) -> str:
    """The env id the run trained on (its config.json)."""
    stored = RunDir(run).stored_config()
    if stored is None or stored.env is None:
        raise PrefrlError(f"{run} has no config.json: give a run directory made by `prefrl train`")
    return stored.env


def score_agent(model: RewardEnsemble, agent_run: Path, env_id: str, episodes: int, seed: int) -> Scores:
    """`agent_run`'s final agent over `episodes` episodes of `env_id`, scored by both rewards (means)."""
    agent, outer = load_agent(RunDir(agent_run), DummyVecEnv([lambda: make_env(env_id)]))
    limit = episode_limit(make_env(env_id))
    clips = list(episode_clips(agent, outer, env_id, episodes, seed))
    corr = [np.corrcoef(model.reward(c.obs, c.acts), c.true_rewards)[0, 1] for c in clips if c.length > 1]
    return Scores(true_return=float(np.mean([c.true_return for c in clips])),
                  length=float(np.mean([c.length for c in clips])),
                  learned_return=float(np.mean([learned_return(model, c, limit) for c in clips])),
                  correlation=float(np.nanmean(corr)) if corr else float("nan"))


def main(args: Args) -> None:
    env_id = run_env(args.run)
    env = make_env(env_id)
    model = load_reward_model(args.run, env.observation_space, env.action_space)
    print(f"reward model of {args.run} (absorbing state {model.absorbing_reward():+.2f} a step)")
    print(f"{'agent':<48} {'true return':>11} {'length':>7} {'learned return':>14} {'corr':>5}")
    for agent_run in [args.run, *args.agents]:
        s = score_agent(model, agent_run, env_id, args.episodes, args.seed)
        print(f"{str(agent_run):<48} {s.true_return:>11.0f} {s.length:>7.0f} {s.learned_return:>14.0f} "
              f"{s.correlation:>5.2f}")


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args, description=__doc__))))
