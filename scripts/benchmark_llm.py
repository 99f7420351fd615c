"""Gain ratio of the LLM adapter on the letter task: (S_learned - S_base) / (S_true - S_base).

Both arms use the same SFT model, RL steps, beta and seed; the learned arm gets at most `labels` oracle labels. A
control arm trains the reward model on shuffled labels (each query's answer replaced by a random one), which should
recover little of the gain. Appends one raw JSON row per seed and arm to docs/benchmark-results-llm.jsonl.

    python scripts/benchmark_llm.py --seeds 0 1 2 --labels 300 --steps 60
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tyro

from prefrl.config import TeacherConfig
from prefrl.llm import tasks
from prefrl.llm.cli import gain_ratio
from prefrl.llm.loop import TextTrainConfig, evaluate, load_score, train_text
from prefrl.llm.model import build_tiny_model, load_policy
from prefrl.llm.sft import SftConfig, run_sft


@dataclass(frozen=True)
class Args:
    seeds: tuple[int, ...] = (0, 1, 2)
    labels: int = 300
    steps: int = 60
    beta: float = 0.05
    sft_steps: int = 150
    out: Path = Path("runs/benchmark-llm")
    results: Path = Path("docs/benchmark-results-llm.jsonl")
    control: bool = True
    """Also run the shuffled-labels control (a teacher that answers at random: TeacherConfig epsilon=0.5)."""


def main(args: Args) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for seed in args.seeds:
        t0 = time.time()
        root = args.out / f"seed{seed}"
        rng = np.random.default_rng(seed)
        data = tasks.write_jsonl(root / "demos.jsonl", tasks.demos(4000, rng))
        prompts = tasks.write_jsonl(root / "prompts.jsonl", [{"prompt": p} for p in tasks.prompts(512, rng)])
        sft = run_sft(data, build_tiny_model(root / "base", seed=seed), root / "sft",
                      SftConfig(steps=args.sft_steps, seed=seed, device="cpu"))
        cfg = TextTrainConfig(model=sft.out, prompts=prompts, labels=args.labels, steps=args.steps, beta=args.beta,
                              seed=seed, device="cpu")
        policy, tok = load_policy(sft.out, "cpu")
        eval_prompts = tasks.prompts(cfg.eval_prompts, np.random.default_rng(seed + 10_000))
        base = evaluate(policy, tok, eval_prompts, load_score(cfg.teacher_score), cfg.max_completion_tokens)
        true = train_text(replace(cfg, out=root / "true", reward="true"))["final_score"]
        arms = {"learned": replace(cfg, out=root / "learned")}
        if args.control:  # a "mistake" teacher with epsilon 0.5 flips a fair coin: labels carry no information
            arms["shuffled"] = replace(cfg, out=root / "shuffled", teacher="mistake",
                                       teacher_params=TeacherConfig(epsilon=0.5))
        for arm, arm_cfg in arms.items():
            s = train_text(arm_cfg)
            row = {"task": "letters", "arm": arm, "seed": seed, "labels": s["labels"], "steps": args.steps,
                   "beta": args.beta, "base_score": base, "true_score": true, "learned_score": s["final_score"],
                   "gain_ratio": gain_ratio(base, s["final_score"], true), "seconds": round(time.time() - t0, 1),
                   "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            args.results.parent.mkdir(parents=True, exist_ok=True)
            with args.results.open("a") as f:
                f.write(json.dumps(row) + "\n")
            logging.info("%s", row)


if __name__ == "__main__":
    main(tyro.cli(Args))
