"""The preference loop for a text policy: sample completions, ask, answer, refit, and RL with TRL's RLOOTrainer.

    SFT model ─► RLOOTrainer (KL to the SFT model) ─► completions ─► reward callable ─► learned reward
                                                           │ (kept as clips)
                                                           ▼
                 every `label_every` steps (a TrainerCallback): Preferences.round: pairs ─► store ─► teacher ─► refit

The completions RLOO samples for its own update are the candidate clips (as the Gym loop's reward wrapper records
the agent's steps), so labelling costs no extra generation. Before RL the initial labels are asked about samples of
the SFT model. RLOOTrainer rather than GRPOTrainer: RLOO puts the KL to the reference in the reward, the
formulation of the RLHF papers, and its leave-one-out baseline works with two completions per prompt.

Both arms (learned reward, true score) see their reward on one scale (`reward_scale`), so one beta means the same
in both; the policy's dropout is off during RL (with it on, the sequence-level ratio of RLOO's loss was taken
between two different dropout masks, and the tiny model's weights went to NaN within 200 steps at lr 1e-3).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from prefrl.config import RewardModelConfig, SelectionKind, TeacherConfig, TeacherKind
from prefrl.core.data import Clip
from prefrl.core.labels import Preferences
from prefrl.core.loading import load_callable
from prefrl.core.reward.trainer import RewardStats, RewardTrainer
from prefrl.core.schedule import LabelSchedule
from prefrl.core.selection import make_selector
from prefrl.core.store import PreferenceStore
from prefrl.core.teachers import ScriptedTeacher
from prefrl.errors import PrefrlError
from prefrl.llm.formats import TEXT_ENV
from prefrl.llm.model import load_policy, resolve_device, sample
from prefrl.llm.reward import TextRewardConfig, TextRewardModel
from prefrl.llm.sft import PromptOnly, read_jsonl

log = logging.getLogger(__name__)

ScoreFn = Callable[[str, str], float]


@dataclass(frozen=True)
class TextTrainConfig:
    """RL of a text policy from preferences (or, with --reward true, on the teacher's score directly)."""

    model: Path
    """The SFT model: a directory written by `save_pretrained` (e.g. by `prefrl llm sft`)."""
    prompts: Path
    """JSON Lines of {"prompt": ...}, sampled with replacement."""
    out: Path = Path("runs/llm")
    labels: int = 400
    """Label budget (queries asked)."""
    teacher: TeacherKind = "oracle"
    teacher_score: str = "prefrl.llm.tasks:letter_share"
    """module:function taking (prompt, completion) -> float: what a scripted teacher judges by."""
    reward: Literal["learned", "true"] = "learned"
    """learned: RL on the reward model; true: RL on the teacher's score itself (the upper arm)."""
    steps: int = 200
    """RLOO optimiser steps."""
    batch_size: int = 32
    """Completions per RL step (num_generations per prompt)."""
    num_generations: int = 4
    """Completions per prompt; RLOO's baseline for each is the mean reward of the others."""
    beta: float = 0.05
    """KL penalty to the SFT (reference) model (on the sequence's summed log-ratio, against the scaled reward)."""
    reward_scale: Literal["sft", "batch", "raw"] = "sft"
    """How the RL reward is scaled, the same way in both arms so that beta weighs the same against either: sft:
    divided by its standard deviation over a fixed set of the SFT model's completions (for the learned reward,
    recomputed after each refit); batch: standardised within each RL batch; raw: as it comes (the true score's
    spread is ~0.1, the learned reward's 1)."""
    scale_samples: int = 256
    """SFT completions the sft scale is measured on."""
    lr: float = 1e-3
    """Policy learning rate (high, for the tiny model; ~1e-6 for a pretrained one)."""
    max_completion_tokens: int = 20
    temperature: float = 1.0
    label_every: int = 10
    """A preference round every this many RL steps."""
    initial_fraction: float = 0.6
    """Share of the label budget asked about SFT samples before RL."""
    initial_fits: int = 3
    """Reward-model fits on the initial labels before RL starts (each continues the last), so the reward model is
    good before the policy moves."""
    selection: SelectionKind = "disagreement"
    buffer: int = 1000
    """Recent completions kept as candidates for queries."""
    eval_prompts: int = 128
    """Prompts (one completion each) the final policy is scored on."""
    seed: int = 0
    device: str = "auto"
    """cpu | cuda | auto."""
    teacher_params: TeacherConfig = field(default_factory=TeacherConfig)
    reward_model: RewardModelConfig = field(
        default_factory=lambda: RewardModelConfig(hidden=32, lr=3e-3))
    """Its fits are cheap, so each trains on every label (measured so: docs/benchmarks.md, the LLM section)."""
    text_reward: TextRewardConfig = field(default_factory=TextRewardConfig)

    def __post_init__(self) -> None:
        if self.batch_size % self.num_generations:
            raise PrefrlError(f"--batch-size {self.batch_size} must be a multiple of --num-generations "
                              f"{self.num_generations}")
        if self.teacher == "human":
            raise PrefrlError("--teacher human is not wired into `prefrl llm train` yet: use a scripted teacher")


def load_score(spec: str) -> ScoreFn:
    """The completion score named by "package.module:function" (--teacher-score)."""
    return load_callable(spec, "--teacher-score")


class CompletionBuffer:
    """The recent completions as clips (a `ClipSource`): one step each, obs the token ids of prompt and completion."""

    def __init__(self, tokenizer: Any, score: ScoreFn, capacity: int) -> None:
        self.tokenizer, self.score, self.capacity = tokenizer, score, capacity
        self._clips: list[Clip] = []
        self._episode = 0

    @property
    def clips(self) -> Sequence[Clip]:
        return self._clips

    def forget(self, indices: set[int]) -> None:
        self._clips = [c for i, c in enumerate(self._clips) if i not in indices]

    def add(self, prompts: Sequence[str], completions: Sequence[str], step: int) -> np.ndarray:
        """Keep these completions as clips; returns their true scores."""
        scores = np.array([float(self.score(p, c)) for p, c in zip(prompts, completions)], dtype=np.float32)
        for p, c, s in zip(prompts, completions, scores):
            ids = np.asarray(self.tokenizer(p + c, add_special_tokens=False)["input_ids"], dtype=np.int64)[None]
            self._clips.append(Clip(obs=ids, acts=np.zeros((1, 0), dtype=np.float32), true_rewards=np.array([s]),
                                    env_step=step, episode=self._episode, prompt=p, completion=c))
            self._episode += 1
        self._clips = self._clips[-self.capacity:]
        return scores


@dataclass
class Round:
    """What one label round saw; a row of metrics.csv."""

    step: int
    labels: int
    kl: float
    learned: float
    true: float
    reward_val_accuracy: float
    samples: str


def train_text(cfg: TextTrainConfig) -> dict[str, Any]:
    """Run the loop; returns a summary (final true score, labels, KL) that is also written to OUT/summary.json."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import RLOOConfig, RLOOTrainer

    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "config.json").write_text(json.dumps(asdict(cfg), default=str, indent=2))
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    prompts = [r["prompt"] for r in read_jsonl(cfg.prompts, PromptOnly)]
    score = load_score(cfg.teacher_score)
    policy, tok = load_policy(cfg.model, device)

    # -- the label machinery, shared with the Gym loop ---------------------------------------------------------
    store = PreferenceStore(cfg.out / "prefs.sqlite", env_id=TEXT_ENV)
    model = TextRewardModel(tok, cfg.reward_model, cfg.text_reward).to(device)
    trainer = RewardTrainer(model, cfg.reward_model, rng)
    buffer = CompletionBuffer(tok, score, cfg.buffer)
    initial = round(cfg.labels * cfg.initial_fraction) if cfg.reward == "learned" else 0
    schedule = LabelSchedule(total=cfg.labels if cfg.reward == "learned" else 0, initial=initial,
                             horizon=cfg.steps, t0=max(1.0, cfg.steps / 4))
    prefs = Preferences(store=store, schedule=schedule, selector=make_selector(cfg.selection, model, 10),
                        trainer=trainer, source=buffer, teacher=ScriptedTeacher(cfg.teacher, cfg.teacher_params, rng),
                        rng=rng)
    rounds: list[Round] = []
    window: dict[str, list[float]] = {"kl": [], "learned": [], "true": []}
    last_stats: list[RewardStats | None] = [None]

    def close_round(step: int) -> None:
        stats = prefs.round(step, step) if cfg.reward == "learned" else None
        rescale()
        last_stats[0] = stats or last_stats[0]
        acc = last_stats[0].val_accuracy if last_stats[0] is not None else math.nan
        recent = list(buffer.clips)[-3:]
        rounds.append(Round(step=step, labels=prefs.labels(), kl=_mean(window["kl"]), learned=_mean(window["learned"]),
                            true=_mean(window["true"]), reward_val_accuracy=acc,
                            samples=" | ".join(f"{(c.prompt or '').strip()} -> {c.completion!r}" for c in recent)))
        _write_metrics(cfg.out / "metrics.csv", rounds)
        log.info("step %d: labels %d, KL %.3f, learned %.3f, true %.3f, reward-model val acc %.2f", step,
                 rounds[-1].labels, rounds[-1].kl, rounds[-1].learned, rounds[-1].true, acc)
        for v in window.values():
            v.clear()

    # -- the reward's scale: its spread over the SFT model's completions (the learned one's after each refit) ------
    ref_prompts = [prompts[i] for i in np.random.default_rng(cfg.seed + 20_000).integers(0, len(prompts),
                                                                                          cfg.scale_samples)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 20_000)
        ref_completions = sample(policy, tok, ref_prompts, max_new_tokens=cfg.max_completion_tokens,
                                 temperature=cfg.temperature)
    scale = [1.0]

    def rescale() -> None:
        ref = (np.array([score(p, c) for p, c in zip(ref_prompts, ref_completions)]) if cfg.reward == "true"
               else model.reward_texts(ref_prompts, ref_completions))
        scale[0] = max(float(np.std(ref)), 1e-6)

    rescale()

    # -- initial labels, about the SFT model's samples ---------------------------------------------------------
    if cfg.reward == "learned":
        first = [prompts[i] for i in rng.integers(0, len(prompts), 2 * initial + cfg.batch_size)]
        window["true"] += buffer.add(first, sample(policy, tok, first, max_new_tokens=cfg.max_completion_tokens,
                                                   temperature=cfg.temperature), 0).tolist()
        prefs.ask(prefs.due(0), 0)
        prefs.answer()
        for _ in range(cfg.initial_fits - 1):
            prefs.refit()
        close_round(0)  # the last fit, and the round's metrics

    # -- RL, with a label round every `label_every` steps --------------------------------------------------------
    step_now = [0]

    def reward_fn(prompts: list[str], completions: list[str], **_: Any) -> list[float | None]:
        true = buffer.add(prompts, completions, step_now[0])
        window["true"] += true.tolist()
        rewards = true if cfg.reward == "true" else model.reward_texts(prompts, completions)
        if cfg.reward == "learned":
            window["learned"] += rewards.tolist()
        if cfg.reward_scale == "batch":
            rewards = (rewards - rewards.mean()) / (rewards.std() + 1e-6)
        elif cfg.reward_scale == "sft":
            rewards = rewards / scale[0]
        return [float(r) for r in rewards]

    class LabelRounds(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            step_now[0] = state.global_step
            if state.global_step % cfg.label_every == 0 or state.global_step == cfg.steps:
                close_round(state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            if logs and logs.get("kl") is not None:
                window["kl"].append(float(logs["kl"]))

    n_rows = cfg.steps * cfg.batch_size // cfg.num_generations
    dataset = Dataset.from_list([{"prompt": prompts[i]} for i in rng.integers(0, len(prompts), n_rows)])
    rl_args = RLOOConfig(output_dir=str(cfg.out / "rl"), max_steps=cfg.steps,
                         per_device_train_batch_size=cfg.batch_size, num_generations=cfg.num_generations,
                         beta=cfg.beta, learning_rate=cfg.lr, max_completion_length=cfg.max_completion_tokens,
                         temperature=cfg.temperature, top_k=0, logging_steps=1, save_strategy="no", report_to="none",
                         seed=cfg.seed, use_cpu=device.type == "cpu", disable_tqdm=True, bf16=False, fp16=False,
                         lr_scheduler_type="constant", warmup_steps=0, disable_dropout=True)
    reward_fn.__name__ = "learned" if cfg.reward == "learned" else "true_score"
    rl = RLOOTrainer(model=policy, reward_funcs=reward_fn, args=rl_args, train_dataset=dataset, processing_class=tok,
                     callbacks=[LabelRounds()])
    _quiet(rl)
    rl.train()

    # -- the result ---------------------------------------------------------------------------------------------
    policy.save_pretrained(cfg.out / "policy")
    tok.save_pretrained(cfg.out / "policy")
    model.save(cfg.out / "reward_model.pt")
    eval_prompts = [prompts[i] for i in np.random.default_rng(cfg.seed + 10_000).integers(0, len(prompts),
                                                                                           cfg.eval_prompts)]
    final = evaluate(policy, tok, eval_prompts, score, cfg.max_completion_tokens, cfg.temperature, cfg.seed)
    summary = {"final_score": final, "labels": prefs.labels(), "asked": prefs.asked, "steps": cfg.steps,
               "reward": cfg.reward, "kl": rounds[-1].kl if rounds else math.nan, "seed": cfg.seed}
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2))
    _plot(cfg.out / "report.png", rounds)
    store.close()
    return summary


def evaluate(policy: Any, tok: Any, prompts: list[str], score: ScoreFn, max_new_tokens: int,
             temperature: float = 1.0, seed: int = 0) -> float:
    """Mean true score of one sampled completion per prompt (sampled under torch seed `seed`, so two evaluations
    of the same policy agree; the global torch RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        completions = sample(policy, tok, prompts, max_new_tokens=max_new_tokens, temperature=temperature)
    return float(np.mean([score(p, c) for p, c in zip(prompts, completions)]))


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else math.nan


def _quiet(trainer: Any) -> None:
    from transformers import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def _write_metrics(path: Path, rounds: list[Round]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rounds[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in rounds)


def _plot(path: Path, rounds: list[Round]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rounds:
        return
    steps = [r.step for r in rounds]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [r.true for r in rounds], "o-", label="true score (teacher)")
    ax.set_xlabel("RL step")
    ax.set_ylabel("true score")
    ax2 = ax.twinx()
    ax2.plot(steps, [r.learned for r in rounds], "s--", color="tab:orange", label="learned reward")
    ax2.set_ylabel("learned reward (normalised)")
    fig.legend(loc="upper left")
    ax.set_title("learned reward vs true score of the same samples")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
