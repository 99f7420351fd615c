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

from prefrl.llm.loop import TextTrainConfig

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
    lr: float = 3e-3
    seed: int = 0
    device: str = "auto"
    """cpu | cuda | auto."""


@dataclass(frozen=True)
class DemoArgs:
    """The letter task end to end on a tiny model: SFT, then RL on learned rewards (OUT/learned) and on the true
    score (OUT/true) with the same steps, beta and seed; OUT/summary.json compares them."""

    out: Path = Path("runs/llm-demo")
    labels: int = 300
    steps: int = 60
    """RL steps in each arm."""
    sft_steps: int = 150
    seed: int = 0
    device: str = "cpu"
    """cpu | cuda | auto (the tiny model runs faster on the CPU)."""


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
    """Run the demo; returns (and writes to OUT/summary.json) base, learned and true scores."""
    from prefrl.llm import tasks
    from prefrl.llm.loop import evaluate, load_score, train_text
    from prefrl.llm.model import build_tiny_model, load_policy
    from prefrl.llm.sft import SftConfig, run_sft

    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    data = tasks.write_jsonl(args.out / "demos.jsonl", tasks.demos(4000, rng))
    prompts = tasks.write_jsonl(args.out / "prompts.jsonl", [{"prompt": p} for p in tasks.prompts(512, rng)])
    sft = run_sft(data, build_tiny_model(args.out / "base", seed=args.seed), args.out / "sft",
                  SftConfig(steps=args.sft_steps, seed=args.seed, device=args.device))
    cfg = TextTrainConfig(model=sft.out, prompts=prompts, labels=args.labels, steps=args.steps, seed=args.seed,
                          device=args.device)
    policy, tok = load_policy(sft.out, args.device)
    eval_prompts = tasks.prompts(cfg.eval_prompts, np.random.default_rng(args.seed + 10_000))
    base = evaluate(policy, tok, eval_prompts, load_score(cfg.teacher_score), cfg.max_completion_tokens)
    learned = train_text(replace(cfg, out=args.out / "learned"))
    true = train_text(replace(cfg, out=args.out / "true", reward="true"))
    summary = {"base_score": base, "learned_score": learned["final_score"], "true_score": true["final_score"],
               "labels": learned["labels"], "steps": args.steps, "seed": args.seed,
               "gain_ratio": gain_ratio(base, learned["final_score"], true["final_score"]),
               "seconds": round(time.time() - t0, 1)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def gain_ratio(base: float, learned: float, true: float) -> float:
    """(S_learned - S_base) / (S_true - S_base): the share of the true-reward arm's gain the learned reward gets."""
    return (learned - base) / (true - base) if true != base else float("nan")


def run_demo_command(args: DemoArgs) -> int:
    s = demo(args)
    log.info("base %.3f, learned %.3f, true %.3f (gain ratio %.2f) with %d labels; in %s", s["base_score"],
             s["learned_score"], s["true_score"], s["gain_ratio"], s["labels"], args.out)
    return 0


COMMANDS: dict[str, tuple[type, Callable[[Any], int]]] = {
    "sft": (SftArgs, run_sft_command),
    "train": (TextTrainConfig, run_train_command),
    "demo": (DemoArgs, run_demo_command),
}
