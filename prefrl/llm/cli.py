"""`prefrl llm ...`: the commands' flags (tyro dataclasses) and their handlers.

`COMMANDS` maps a subcommand name to (its args dataclass, a handler returning the exit code); the main CLI wires
them under `prefrl llm`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.config import TeacherConfig
from prefrl.llm.loop import TextTrainConfig
from prefrl.llm.tasks import LENGTH

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SftArgs:
    """Supervised fine-tuning on prompt-completion JSON Lines ({"prompt", "completion"} per line)."""

    data: Path
    """The JSON Lines file."""
    out: Path
    """Where the fine-tuned model and tokenizer are written (loadable with from_pretrained)."""
    model: Path | None = None
    """Starting model (a save_pretrained directory); default: a new tiny character-level GPT-2."""
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    """cpu | cuda | auto."""


@dataclass(frozen=True)
class DemoArgs:
    """The letter task end to end on a tiny model: SFT, then RL on learned rewards (OUT/learned) and on the true
    score (OUT/true) with the same steps, beta and seed; OUT/summary.json compares them."""

    out: Path = Path("runs/llm-demo")
    labels: int = 400
    """Label budget of the learned arm (oracle answers)."""
    steps: int = 200
    """RL steps in each arm."""
    beta: float = 0.05
    """KL penalty to the SFT model, the same in each arm."""
    sft_steps: int = 300
    seed: int = 0
    control: bool = False
    """Also run a control arm (OUT/shuffled) whose teacher answers at random (a mistake teacher with epsilon 0.5):
    its reward model learns nothing, so its gain should be near none."""
    device: str = "cpu"
    """cpu | cuda | auto (the tiny model runs faster on the CPU)."""

    def train_config(self, model: Path, prompts: Path) -> TextTrainConfig:
        """The settings every arm shares (out and reward are set per arm)."""
        return TextTrainConfig(model=model, prompts=prompts, labels=self.labels, steps=self.steps, beta=self.beta,
                               seed=self.seed, device=self.device)


def run_sft_command(args: SftArgs) -> int:
    from prefrl.llm.model import build_tiny_model
    from prefrl.llm.sft import SftConfig, run_sft

    base = args.model if args.model is not None else build_tiny_model(args.out / "base", seed=args.seed)
    res = run_sft(args.data, base, args.out, SftConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                                       seed=args.seed, device=args.device))
    log.info("SFT loss %.3f -> %.3f; model in %s", res.first_loss, res.last_loss, res.out)
    return 0


def run_train_command(cfg: TextTrainConfig) -> int:
    from prefrl.llm.loop import train_text

    summary = train_text(cfg)
    log.info("final true score %.3f with %d labels; run in %s", summary["final_score"], summary["labels"], cfg.out)
    return 0


def demo(args: DemoArgs) -> dict[str, Any]:
    """Run the demo; returns (and writes to OUT/summary.json) the base, learned, true (and control) scores, with a
    few completions of the SFT and the tuned (learned-arm) policy for the same prompts."""
    from prefrl.llm import tasks
    from prefrl.llm.loop import evaluate, load_score, train_text
    from prefrl.llm.model import build_tiny_model, load_policy, sample
    from prefrl.llm.sft import SftConfig, run_sft

    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    data = tasks.write_jsonl(args.out / "demos.jsonl", tasks.demos(4000, rng))
    prompts = tasks.write_jsonl(args.out / "prompts.jsonl", [{"prompt": p} for p in tasks.prompts(512, rng)])
    sft = run_sft(data, build_tiny_model(args.out / "base", seed=args.seed), args.out / "sft",
                  SftConfig(steps=args.sft_steps, seed=args.seed, device=args.device))
    cfg = args.train_config(sft.out, prompts)
    score = load_score(cfg.teacher_score)
    eval_prompts = tasks.prompts(cfg.eval_prompts, np.random.default_rng(args.seed + 10_000))
    policy, tok = load_policy(sft.out, args.device)
    base = evaluate(policy, tok, eval_prompts, score, cfg.max_completion_tokens, cfg.temperature, cfg.seed)
    log.info("SFT model: true score %.3f; RL on the true score (%d steps, beta %s)", base, cfg.steps, cfg.beta)
    true = train_text(replace(cfg, out=args.out / "true", reward="true"))
    log.info("true-score arm: %.3f; RL on learned rewards (at most %d labels)", true["final_score"], cfg.labels)
    learned = train_text(replace(cfg, out=args.out / "learned"))
    summary: dict[str, Any] = {
        "base_score": base, "learned_score": learned["final_score"], "true_score": true["final_score"],
        "labels": learned["labels"], "steps": cfg.steps, "beta": cfg.beta, "seed": args.seed,
        "gain_ratio": gain_ratio(base, learned["final_score"], true["final_score"])}
    if args.control:
        log.info("learned arm: %.3f; control arm: random labels", learned["final_score"])
        control = train_text(replace(cfg, out=args.out / "shuffled", teacher="mistake",
                                     teacher_params=TeacherConfig(epsilon=0.5)))
        summary.update(control_score=control["final_score"], control_labels=control["labels"],
                       control_gain_ratio=gain_ratio(base, control["final_score"], true["final_score"]))
    show = [tasks.prompt_for(c) for c in tasks.LETTERS[::2]]
    tuned, _ = load_policy(args.out / "learned" / "policy", args.device)
    summary["samples"] = [
        {"prompt": p, "sft": a, "sft_score": score(p, a), "tuned": b, "tuned_score": score(p, b)}
        for p, a, b in zip(show, _sample(sample, policy, tok, show, cfg), _sample(sample, tuned, tok, show, cfg))]
    summary["seconds"] = round(time.time() - t0, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _sample(sample: Callable[..., list[str]], model: Any, tok: Any, prompts: list[str],
            cfg: TextTrainConfig) -> list[str]:
    """One completion per prompt under a fixed seed (the SFT and tuned samples are drawn alike)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return sample(model, tok, prompts, max_new_tokens=cfg.max_completion_tokens, temperature=cfg.temperature)


def gain_ratio(base: float, learned: float, true: float) -> float:
    """(S_learned - S_base) / (S_true - S_base): the share of the true-reward arm's gain the learned reward gets."""
    return (learned - base) / (true - base) if true != base else float("nan")


def run_demo_command(args: DemoArgs) -> int:
    s = demo(args)
    print(f"\n{'prompt':<10}  {'SFT model':<20} score   {'tuned on learned rewards':<24} score")
    for x in s["samples"]:
        print(f"{x['prompt'].strip():<10}  {x['sft']!r:<20} {x['sft_score']:.2f}    {x['tuned']!r:<24} "
              f"{x['tuned_score']:.2f}")
    print(f"\nmean true score (share of the named letter among the first {LENGTH} characters), "
          f"{TextTrainConfig.eval_prompts} prompts:\n"
          f"  SFT model                      {s['base_score']:.3f}\n"
          f"  RL on the true score           {s['true_score']:.3f}\n"
          f"  RL on learned rewards          {s['learned_score']:.3f}  ({s['labels']} labels)")
    if "control_score" in s:
        print(f"  RL on random labels (control)  {s['control_score']:.3f}  (gain ratio {s['control_gain_ratio']:.2f})")
    print(f"gain ratio (learned - SFT) / (true - SFT): {s['gain_ratio']:.2f}; {s['steps']} RL steps and beta "
          f"{s['beta']} in each arm; {s['seconds']:.0f} s; runs in {args.out}")
    return 0


COMMANDS: dict[str, tuple[type, Callable[[Any], int]]] = {
    "sft": (SftArgs, run_sft_command),
    "train": (TextTrainConfig, run_train_command),
    "demo": (DemoArgs, run_demo_command),
}
