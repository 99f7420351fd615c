"""Configuration: one frozen dataclass per component, composed into the run's `TrainConfig`.

The CLI is generated from these classes (tyro), so each field's docstring is its `--help` text.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from prefrl.errors import PrefrlError

TeacherKind = Literal["oracle", "stochastic", "mistake", "skip", "equal", "myopic", "human"]
SelectionKind = Literal["random", "disagreement", "entropy"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class _Range:
    """The values a numeric option accepts: low..high, each end open or closed."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def holds(self, x: float) -> bool:  # NaN holds nowhere
        above = self.low < x if self.low_open else self.low <= x
        return above and (x < self.high if self.high_open else x <= self.high)

    def __str__(self) -> str:
        if self.high == math.inf:
            return "positive" if (self.low, self.low_open) == (0, True) else f"{self.low:g} or more"
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


POSITIVE = _Range(0, low_open=True)
NON_NEGATIVE = _Range(0)
UNIT = _Range(0, 1)
UNIT_BELOW_ONE = _Range(0, 1, high_open=True)
UNIT_ABOVE_ZERO = _Range(0, 1, low_open=True)


def _check_ranges(cfg: Any, prefix: str, ranges: dict[str, _Range]) -> None:
    """Refuse a numeric field of `cfg` outside its range, naming it as the CLI spells it (`prefix` + field name:
    a nested config's prefix is its field name in TrainConfig, e.g. `--reward-model.`). None (a preset) passes;
    a tuple (net_arch) is checked element by element."""
    for f in dataclasses.fields(cfg):
        value, allowed = getattr(cfg, f.name), ranges.get(f.name)
        if allowed is None or value is None:
            continue
        if not all(allowed.holds(v) for v in (value if isinstance(value, tuple) else (value,))):
            flag = f"{prefix}{f.name.replace('_', '-')}"
            rule = f"lie in {allowed}" if allowed.high < math.inf else f"be {allowed}"
            default = f.default if f.default is not dataclasses.MISSING else None
            fix = ("leave it out for the env's preset" if prefix == "--agent." else
                   "leave it out for the default (25 steps for a synthetic teacher, --queries.clip-seconds for a "
                   "person)" if f.name == "clip_length" else f"leave it out for the default ({_show_number(default)})")
            each = " (each value)" if isinstance(value, tuple) else ""
            raise PrefrlError(f"{flag} must {rule}{each} (got {_show_number(value)}): {fix}")


def _show_number(x: Any) -> str:
    if isinstance(x, tuple):
        return " ".join(_show_number(v) for v in x)
    return f"{x:.4g}" if isinstance(x, float) else str(x)


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
    seconds_per_label: float = 0.0
    """Above 0: the scripted teacher stands in for a person: it answers through the store, one query every this many
    seconds, on a thread, and the run waits for it as for a person (clips last --queries.clip-seconds too)."""

    def __post_init__(self) -> None:
        _check_ranges(self, "--teacher-params.", {"epsilon": UNIT, "gamma": UNIT_ABOVE_ZERO,
                                                  "equal_threshold": NON_NEGATIVE, "seconds_per_label": NON_NEGATIVE})


@dataclass(frozen=True)
class QueryConfig:
    """How clips are cut and which pairs are asked about, and when."""

    clip_length: int | None = None
    """Steps in one clip. Default: 25 for synthetic teachers (the length the label-efficiency benchmark was measured
    with; HalfCheetah 1.25 s); for a person, --queries.clip-seconds of the env's own time (Atari: 25 steps, 1.7 s)."""
    clip_seconds: float = 1.5
    """With --teacher human and no --queries.clip-length: how long a clip lasts in the env's time, turned into agent
    steps from its timestep (Hopper, Walker2d: 8 ms a step, so 188 steps; HalfCheetah: 50 ms, 30 steps)."""
    selection: SelectionKind = "random"
    """How pairs are chosen: random, or where the ensemble disagrees most (disagreement, entropy)."""
    oversample: int = 10
    """Candidate pairs scored per query asked, for disagreement and entropy selection."""
    initial_fraction: float = 0.25
    """Share of the label budget asked about clips of the initial random policy, before RL starts."""
    initial_steps: int = 0
    """Env steps of the random policy that provide those clips (0: derived from the initial labels)."""
    decay: float = 0.02
    """T0 of the label rate T0/(T+T0), as a fraction of the agent's step budget. 0.02 (most labels early, so the
    reward settles while the agent is still searching) against 0.25 before, 700 oracle labels at 1M steps, 3 seeds:
    Hopper 0.95 and Walker2d 0.93 against 0.80 each (session 17, today's fitting); 1.24 / 0.94 against 0.93 / 0.89
    (session 14, blocking fits). docs/benchmarks.md, "Labels sooner"."""
    buffer_clips: int = 2000
    """How many recent clips are kept in memory as candidates."""
    reference_fraction: float = 0.0
    """Share of the queries that pair a new clip with a clip asked about before (imported ones included), chosen
    as `selection` says: at random, or the candidates the ensemble is least sure of. New behaviour is then judged
    against old, not only against itself, so a model error the agent exploits gets answered against what the
    store already holds (research/backflip/README.md, eighth round)."""
    max_open: int = 12
    """With a human teacher: at most this many unanswered queries wait, so the ones shown stay recent."""
    max_behind: int = 24
    """With a human teacher and --wait-for-labels: the agent pauses while more questions than this are due or
    open (the person has fallen behind the schedule), rather than train far ahead on a stale reward."""

    def __post_init__(self) -> None:
        _check_ranges(self, "--queries.", {
            "clip_length": POSITIVE, "oversample": POSITIVE, "initial_fraction": UNIT, "initial_steps": NON_NEGATIVE,
            "decay": POSITIVE, "buffer_clips": POSITIVE, "reference_fraction": UNIT, "max_open": POSITIVE,
            "clip_seconds": POSITIVE, "max_behind": NON_NEGATIVE})


@dataclass(frozen=True)
class RewardModelConfig:
    """The reward-model ensemble and how it is trained."""

    members: int = 3
    """Ensemble size."""
    hidden: int = 64
    """Width of each hidden layer."""
    layers: int = 2
    """Number of hidden layers."""
    action_squares: bool = True
    """For continuous (Box) actions, the MLP also reads each action component squared. Quadratic action costs (MuJoCo's
    control cost) are hard for a piecewise-linear network to form from a few hundred labels: fitted on Ant-v5's 700
    oracle labels, the learned reward's correlation with the control cost over the agent's steps was 0.04 without
    the squares and 0.44 with them (the true reward's: 0.52), and Ant's preference-trained agents went from -149, -0
    and 10 at 1M steps to 276, 85 and 9 (PPO on the true reward: 182; docs/benchmarks.md, the suite)."""
    squares_lr: float | None = None
    """With --reward-model.action-squares (the default): None, the squares are inputs of the MLP; a rate, they are a
    linear term of their own instead, r = MLP(obs, a) + sum w * a^2 (each member its own w, standardised squares),
    which Adam fits at this rate (at `lr` the few weights of w move too slowly to learn a control cost from a few
    hundred labels)."""
    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 64
    """Comparisons per gradient step."""
    epochs: int = 20
    """Passes per reward-model update over what it trains on: the labels new since the last update and the replay."""
    replay: int | None = None
    """For flat observations, old labels (drawn afresh each update) trained on beside the new ones, so an update's
    cost follows the new labels. None: every update trains on every label, the default: a replay of 64 cost Hopper
    half its return (docs/benchmarks.md, the fitting A/B), and an MLP's fits are cheap."""
    image_replay: int | None = 64
    """The same for image observations, whose CNN fits are what a run's cost is made of (a Pong run's fits: 789
    gradient steps instead of 4,266). None: every label."""
    image_steps: int | None = 8
    """For image observations, the steps of each clip a gradient step reads (random; their sum scaled to the clip's
    length), since each is a CNN pass. None: all. Flat observations are always read whole."""
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
    background: bool = True
    """Fit on a thread beside PPO (a copy of the model; the agent takes the new weights between rollouts), except
    before RL starts and before the final chunk, where the loop waits for the fit. Off: every fit blocks the agent."""
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    """Number format of the CNN's convolutions (image observations only; the weights, the dense layers and the loss
    stay float32). auto: bfloat16 where the hardware computes it natively (a CUDA GPU that supports it, a CPU with
    AVX-512 BF16 or AMX), else float32. A Pong gradient step: 2.5x faster in bfloat16 on this project's CPU
    (docs/benchmarks.md, "The CNN in bfloat16"); pixels 0-255 are exact in it."""
    process: bool = False
    """With `background`: fit in a process of its own instead of a thread, so the fit never holds the interpreter
    lock the agent's Python needs (a small MLP's fit is mostly Python). Costs a spawned interpreter per run
    (a few seconds to start) and the trainer's copy in it (docs/benchmarks.md, "One core and two")."""

    def __post_init__(self) -> None:
        _check_ranges(self, "--reward-model.", {
            "members": POSITIVE, "hidden": POSITIVE, "layers": NON_NEGATIVE, "lr": POSITIVE, "batch_size": POSITIVE,
            "epochs": POSITIVE, "squares_lr": POSITIVE, "replay": NON_NEGATIVE, "image_replay": NON_NEGATIVE,
            "image_steps": POSITIVE,
            "max_updates": POSITIVE,
            "l2": NON_NEGATIVE, "val_fraction": UNIT_BELOW_ONE,
            "random_answer": UNIT_BELOW_ONE})


@dataclass(frozen=True)
class AgentConfig:
    """PPO hyperparameters. None means: the preset for this env (prefrl.gym.agent.PRESETS), else SB3's default."""

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

    def __post_init__(self) -> None:
        _check_ranges(self, "--agent.", {
            "n_envs": POSITIVE, "n_steps": POSITIVE, "batch_size": POSITIVE, "n_epochs": POSITIVE,
            "learning_rate": POSITIVE, "gamma": UNIT_ABOVE_ZERO, "gae_lambda": UNIT, "clip_range": POSITIVE,
            "ent_coef": NON_NEGATIVE, "vf_coef": NON_NEGATIVE, "max_grad_norm": POSITIVE, "net_arch": POSITIVE})


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
    name theirs. Where a score is in effect it is the run's true reward: --reward true trains on it. Evaluations
    sum it over an episode, unless the env names a whole-episode measure of its task (HopperBackflip: landed flips)."""
    train_env_kwargs: dict[str, int | float | str] = field(default_factory=dict)
    """Keyword arguments for the env copies the agent trains in (and the clips for labels come from), as NAME VALUE
    pairs; evaluations, the video and the random baseline use the env as registered. E.g. `--train-env-kwargs
    cut_after_lying 200 flight_starts 0.5 landed_starts 0.4` on prefrl/HopperBackflip-v0 ends practice episodes
    after 200 steps lying, starts half of them in the air during a flip and 40% of the rest standing as after a
    landed flip, while the evaluations count flips over whole episodes from standing."""
    labeler: str | None = None
    """Name stored with a person's labels (default: the login name)."""
    window: bool = True
    """With --teacher human: open the comparison window (else label from another terminal: prefrl label)."""
    wait_for_labels: bool = True
    """With --teacher human: wait for the person where the loop must: for the initial labels before RL starts, when
    they fall behind by more than --queries.max-behind questions, and for the last answers before the final chunk
    of RL (so every answer given is trained on). Off: the agent never waits."""
    reward: Literal["learned", "true"] = "learned"
    """Reward the agent optimises: learned from preferences, or the true one (the baseline): the env's own, or
    the scripted score where one is in effect (see --teacher-score)."""
    reward_from: Path | None = None
    """Train on the reward model saved in this run directory, held fixed: no labels are asked for and the model
    is not updated. Reuses a reward learned once; also tells whether an agent learns from a model that has
    stopped changing under it. A run that itself trained --reward-from gives the model it trained on. Stored
    absolute, so the run resumes from any directory."""
    retrain_steps: int = 0
    """After the run, train a new agent from scratch for this many env steps on the run's final reward model, held
    fixed, in RUN/retrain (a run of its own, as `--reward-from RUN --out RUN/retrain` makes; the person is asked
    nothing more). The agent that learned while the labels came trained on a reward that moved under it. On
    HopperBackflip, new agents on twelve paced runs' final models (1,000 labels each) kept a flipper in 7 of 12,
    against 3 of 12 for the runs' own agents (docs/benchmarks.md). 0: no second phase."""
    seed: int = 0
    out: Path = Path("runs/latest")
    """Run directory."""
    store: str | None = None
    """Preference store: a postgresql://user@host/db URL (the run is named by --out's directory name, or
    ?run=NAME), shared by trainers and labellers on many machines. Default: RUN/prefs.sqlite."""
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
    absorbing_cap: bool = False
    """The agent receives for an absorbing step the lower of the learned reward and the 1st percentile of live steps'
    rewards over recent behaviour, so that ending an episode never pays. Off by default: on Ant-v5 (whose oracle
    prefers an early fall to flailing, its control cost being larger than its reward for living) the learned absorbing
    reward rose above the mean live step and agents learned to fall within 15 steps; with the cap they lived, flailing,
    and scored -900 at 600k steps instead of about 0 (docs/benchmarks.md). On Hopper, Walker2d and InvertedPendulum
    the learned reward ends below the cap. Never for a task where terminating is a success (a goal reached)."""
    reward_per_step: bool = False
    """Compute the learned reward with every env step instead of once a rollout in one batched call (the rewards
    are the same; this is for measuring what the batching saves)."""
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
        if self.retrain_steps > 0 and not self.asks_for_labels:
            raise PrefrlError("--retrain-steps trains a new agent on the reward model this run learns from labels: "
                              "drop --retrain-steps, or drop --reward true / --reward-from")
        if self.reward == "learned" and self.reward_from is None and self.labels <= 0:
            raise PrefrlError(f"--labels must be positive (got {self.labels}): give a label budget, "
                              "or --reward true to train on the env's own reward")
        _check_ranges(self, "--", {"seed": NON_NEGATIVE, "update_every": NON_NEGATIVE, "threads": POSITIVE,
                                   "retrain_steps": NON_NEGATIVE,
                                   "eval_episodes": NON_NEGATIVE, "eval_every": NON_NEGATIVE,
                                   "video_steps": NON_NEGATIVE})

    @property
    def env_id(self) -> str:
        """The run's env (`RunDir.prepare` fills in the default, or the resumed run's own)."""
        if self.env is None:
            raise PrefrlError("no env for this run: pass --env ID (or --resume with a run directory)")
        return self.env

    @property
    def clip_steps(self) -> int:
        """Agent steps in one clip, as the run was prepared with (see --queries.clip-length)."""
        if self.queries.clip_length is None:
            raise PrefrlError("the clip length is set when a run is prepared (RunDir.prepare, as prefrl train does)")
        return self.queries.clip_length

    @property
    def person_paced(self) -> bool:
        """Answers come at a person's pace: from a person, or a scripted teacher standing in for one."""
        return self.teacher == "human" or self.teacher_params.seconds_per_label > 0

    @property
    def waits_for_person(self) -> bool:
        """A person answers, and the loop waits for them where it must (--wait-for-labels)."""
        return self.person_paced and self.wait_for_labels and self.asks_for_labels

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
        return self.queries.initial_steps or round(2.4 * self.initial_labels * (self.queries.clip_length or 25))

    def to_json(self) -> str:
        return json.dumps(_jsonable(dataclasses.asdict(self)), indent=2)

    @classmethod
    def from_json(cls, text: str, source: str | Path = "config.json") -> TrainConfig:
        """The config `to_json` wrote. Anything else (invalid JSON, an unknown key, a value of the wrong type or
        out of range) is refused with one PrefrlError naming `source`, the key and the fix."""
        fix = f"edit or delete {source}"
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            where = f"line {e.lineno} column {e.colno}"
            raise PrefrlError(f"{source} is not valid JSON ({e.msg}: {where}): {fix}") from None
        if isinstance(raw, dict) and isinstance(raw.get("reward_model", {}), dict):
            # Defaults changed since a key was added: a run saved before the key keeps what it ran with (its
            # reward model's weights have that shape), whatever today's default is.
            for key, before in _DEFAULTS_BEFORE_KEY.items():
                raw.setdefault("reward_model", {}).setdefault(key, before)
        try:
            return _from_dict(cls, raw, "")
        except (_ConfigError, PrefrlError) as e:
            raise PrefrlError(f"{source}: {e}: {fix}") from None


_DEFAULTS_BEFORE_KEY = {"action_squares": False}
"""RewardModelConfig keys whose default changed when they were added: the value a config.json saved without the key
ran with."""


class _ConfigError(Exception):
    """A config file's value that does not fit its field (the message names the key path)."""


class _Mismatch(Exception):
    """A value not of the type asked for; the caller says which key and type."""


_C = TypeVar("_C")


def _from_dict(cls: type[_C], raw: Any, path: str) -> _C:
    """Build config dataclass `cls` from parsed JSON, checking each key and value against the field types
    (`path`: the key path so far, e.g. "queries.", for messages). Missing keys take their defaults."""
    if not isinstance(raw, dict):
        where = f"'{path.rstrip('.')}'" if path else "the top level"
        raise _ConfigError(f"{where} must be a JSON object, got {_show(raw)}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in names:
            near = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean '{path}{near[0]}'?" if near else "valid keys: " + ", ".join(names)
            raise _ConfigError(f"unknown key '{path}{key}' ({hint})")
        try:
            kwargs[key] = _convert(hints[key], value, f"{path}{key}")
        except _Mismatch:
            raise _ConfigError(f"'{path}{key}' must be {_describe(hints[key])}, got {_show(value)}") from None
    return cls(**kwargs)


def _convert(tp: Any, value: Any, path: str) -> Any:
    """`value` (parsed JSON) as type `tp`, or _Mismatch. Handles the types config fields use: bool, int, float
    (an int is accepted), str, Path, Literal, X | None, tuple[X, ...] (a JSON list), dict[str, X] (a JSON object),
    nested config dataclasses."""
    origin, args = get_origin(tp), get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, path + ".")  # type: ignore[arg-type]
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is not type(None):
                try:
                    return _convert(option, value, path)
                except _Mismatch:
                    pass
        raise _Mismatch
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Mismatch
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return {_convert(args[0], k, path): _convert(args[1], v, path) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise _Mismatch
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, path) for v in value)
        if len(args) != len(value):
            raise _Mismatch
        return tuple(_convert(a, v, path) for a, v in zip(args, value))
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        ok = isinstance(value, float)
    elif tp is str:
        ok = isinstance(value, str)
    elif tp is Path:
        if isinstance(value, str):
            return Path(value)
        ok = False
    else:
        ok = not isinstance(tp, type) or isinstance(value, tp)
    if not ok:
        raise _Mismatch
    return value


def _describe(tp: Any) -> str:
    """How a config.json value of type `tp` is written, for messages."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None)) + (
            " or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in args)
    if origin is dict:
        return f"an object whose values are each {_describe(args[1])}"
    if origin is tuple:
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path (a string)"}
    return names.get(tp, "an object" if dataclasses.is_dataclass(tp) else getattr(tp, "__name__", str(tp)))


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x
