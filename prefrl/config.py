"""Configuration: one frozen dataclass per component, composed into the run's `TrainConfig`.

The CLI is generated from these classes (tyro), so each field's docstring is its `--help` text.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from prefrl.errors import PrefrlError

TeacherKind = Literal["oracle", "stochastic", "mistake", "skip", "equal", "myopic", "human"]
SelectionKind = Literal["random", "disagreement", "entropy"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class TeacherConfig:
    """Synthetic teacher parameters (B-Pref, Lee et al. 2021); the oracle uses none of them."""

    beta: float = 1.0
    """stochastic: Boltzmann rationality; P(left) = sigmoid(beta * (return_left - return_right))."""
    epsilon: float = 0.1
    """mistake: probability that the answer is flipped."""
    gamma: float = 0.9
    """myopic: weight gamma^(T-1-t) on step t, so later steps of a clip count more."""
    skip_threshold: float = 0.0
    """skip: no answer when both clips' returns are below this."""
    equal_threshold: float = 0.0
    """equal: answer 'equal' when the returns differ by at most this."""


@dataclass(frozen=True)
class QueryConfig:
    """How clips are cut and which pairs are asked about, and when."""

    clip_length: int = 25
    """Steps in one clip (HalfCheetah: 25 steps = 1.25 s)."""
    selection: SelectionKind = "random"
    """How pairs are chosen: random, or where the ensemble disagrees most (disagreement, entropy)."""
    oversample: int = 10
    """Candidate pairs scored per query asked, for disagreement and entropy selection."""
    initial_fraction: float = 0.25
    """Share of the label budget asked about clips of the initial random policy, before RL starts."""
    initial_steps: int = 0
    """Env steps of the random policy that provide those clips (0: derived from the initial labels)."""
    decay: float = 0.25
    """T0 of the label rate T0/(T+T0), as a fraction of the agent's step budget."""
    buffer_clips: int = 2000
    """How many recent clips are kept in memory as candidates."""
    reference_fraction: float = 0.0
    """Share of the queries that pair a new clip with a clip asked about before (imported ones included), chosen
    as `selection` says: at random, or the candidates the ensemble is least sure of. New behaviour is then judged
    against old, not only against itself, so a model error the agent exploits gets answered against what the
    store already holds (docs/backflip.md, eighth round)."""
    max_open: int = 12
    """With a human teacher: at most this many unanswered queries wait, so the ones shown stay recent."""


@dataclass(frozen=True)
class RewardModelConfig:
    """The reward-model ensemble and how it is trained."""

    members: int = 3
    """Ensemble size."""
    hidden: int = 64
    """Width of each hidden layer."""
    layers: int = 2
    """Number of hidden layers."""
    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 64
    """Comparisons per gradient step."""
    epochs: int = 20
    """Passes over the labels per reward-model update."""
    max_updates: int = 400
    """Cap on gradient steps per reward-model update."""
    l2: float = 1e-3
    """Initial L2 weight; adapted so validation loss stays within 1.1-1.5x training loss."""
    val_fraction: float = 1 / math.e
    """Share of labels held out for validation (the paper's 1/e)."""
    random_answer: float = 0.1
    """Assumed chance that the teacher answers at random (the paper's 10%)."""
    bootstrap: bool = True
    """Train each member on its own bootstrap sample of the labels."""


@dataclass(frozen=True)
class AgentConfig:
    """PPO hyperparameters. None means: the preset for this env (prefrl.agent.PRESETS), else SB3's default."""

    n_envs: int | None = None
    """Parallel copies of the env."""
    n_steps: int | None = None
    """Steps per env per rollout."""
    batch_size: int | None = None
    n_epochs: int | None = None
    learning_rate: float | None = None
    gamma: float | None = None
    gae_lambda: float | None = None
    clip_range: float | None = None
    ent_coef: float | None = None
    vf_coef: float | None = None
    max_grad_norm: float | None = None
    net_arch: tuple[int, ...] | None = None
    """Hidden layers of policy and value networks."""
    log_std_init: float | None = None
    activation: Literal["tanh", "relu"] | None = None
    normalize: bool | None = None
    """VecNormalize observations and rewards."""
    policy: Literal["mlp", "cnn"] | None = None
    """SB3 policy: MlpPolicy, or CnnPolicy (NatureCNN) for image observations such as Atari frames."""


@dataclass(frozen=True)
class TrainConfig:
    """Train an agent from preferences: `prefrl train --env ID --steps N --labels N --out DIR`."""

    env: str | None = None
    """A registered Gymnasium id (HalfCheetah-v5, prefrl/PointReach-v0) or package.module:factory.
    Default: HalfCheetah-v5 for a new run, the run's own env with --resume."""
    steps: int = 300_000
    """Agent environment steps (the random-policy steps for the first labels count too)."""
    labels: int = 700
    """Label budget: comparisons asked for over the run."""
    teacher: TeacherKind = "oracle"
    """Who answers: a synthetic teacher that judges by the env's true return, or a person (human) in the
    comparison window, while the agent goes on training."""
    teacher_score: str | None = None
    """package.module:function giving a clip's per-step score (array of shape (T,), each step's from that step
    alone), judged by synthetic teachers instead of the env's reward: for tasks with no reward. Shipped tasks
    name theirs. Where a score is in effect it is the run's true reward: --reward true trains on it."""
    labeler: str | None = None
    """Name stored with a person's labels (default: the login name)."""
    window: bool = True
    """With --teacher human: open the comparison window (else label from another terminal: prefrl label)."""
    reward: Literal["learned", "true"] = "learned"
    """Reward the agent optimises: learned from preferences, or the true one (the baseline): the env's own, or
    the scripted score where one is in effect (see --teacher-score)."""
    reward_from: Path | None = None
    """Train on the reward model saved in this run directory, held fixed: no labels are asked for and the model
    is not updated. Reuses a reward learned once; also tells whether an agent learns from a model that has
    stopped changing under it."""
    seed: int = 0
    out: Path = Path("runs/latest")
    """Run directory."""
    device: Device = "auto"
    """auto: reward model on CUDA when present; MLP policies stay on the CPU, where they are faster."""
    resume: bool = False
    """Continue the run in --out from its checkpoints and store."""
    update_every: int = 0
    """Env steps between reward-model updates (0: a 30th of the budget, rounded to whole rollouts)."""
    fixed_horizon: bool = False
    """Train with early termination ignored (episodes end only at the time limit), as imitation's seals envs do.
    Off by default: measured on Hopper-v5 with 700 labels, a fallen hopper lying out a fixed 1000-step episode
    learned nothing by 150k steps (return ~5), while with termination it reached ~990 by 47k steps."""
    absorbing: bool = True
    """Clips cut short by termination are padded with an absorbing state whose reward the model learns from
    the labels, and the agent receives that reward for the steps it loses by terminating. Without it a
    zero-mean learned reward gives staying alive no value (measured on Hopper-v5: see docs/benchmarks.md)."""
    threads: int = 1
    """torch CPU threads. Small MLPs are fastest on one (measured: 12 s vs 395 s for the same run with
    torch's default threads while the other core was busy)."""
    eval_episodes: int = 5
    """Episodes of the final agent scored on the true reward."""
    eval_every: int = 0
    """Also score the agent every this many env steps (at the next reward-model update), into metrics.csv's
    eval_return column: learning curves, and results at smaller budgets of an unfinished run. 0: only at the end."""
    video_steps: int = 300
    """Length of agent.mp4 in env steps (0: no video)."""
    progress: bool = True
    """Show a progress bar."""
    teacher_params: TeacherConfig = field(default_factory=TeacherConfig)
    queries: QueryConfig = field(default_factory=QueryConfig)
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise PrefrlError(f"--steps must be positive (got {self.steps}): give the agent a step budget")
        if self.reward_from is not None and self.reward != "learned":
            raise PrefrlError("--reward-from trains on a saved reward model: drop --reward true, or drop --reward-from")
        if self.reward == "learned" and self.reward_from is None and self.labels <= 0:
            raise PrefrlError(f"--labels must be positive (got {self.labels}): give a label budget, "
                              "or --reward true to train on the env's own reward")
        if self.queries.clip_length <= 0:
            raise PrefrlError("--queries.clip-length must be positive")
        if not 0 <= self.queries.initial_fraction <= 1:
            raise PrefrlError("--queries.initial-fraction must lie in [0, 1]")
        if not 0 <= self.queries.reference_fraction <= 1:
            raise PrefrlError("--queries.reference-fraction must lie in [0, 1]")

    @property
    def initial_labels(self) -> int:
        return round(self.labels * self.queries.initial_fraction) if self.asks_for_labels else 0

    @property
    def asks_for_labels(self) -> bool:
        """The reward is learned in this run (not the true one, nor a saved model held fixed)."""
        return self.reward == "learned" and self.reward_from is None

    @property
    def random_steps(self) -> int:
        """Env steps of the initial random policy: enough fresh clips for every initial label, with a margin."""
        if self.initial_labels == 0:
            return 0
        return self.queries.initial_steps or round(2.4 * self.initial_labels * self.queries.clip_length)

    def to_json(self) -> str:
        return json.dumps(_jsonable(dataclasses.asdict(self)), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        raw = json.loads(text)
        nested = {"teacher_params": TeacherConfig, "queries": QueryConfig,
                  "reward_model": RewardModelConfig, "agent": AgentConfig}
        kwargs: dict[str, Any] = {}
        for k, v in raw.items():
            if k in nested:
                v = nested[k](**{kk: tuple(vv) if isinstance(vv, list) else vv for kk, vv in v.items()})
            elif k in ("out", "reward_from") and v is not None:
                v = Path(v)
            kwargs[k] = v
        return cls(**kwargs)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x
