"""Gain ratio of the LLM adapter on the letter task: (S_learned - S_base) / (S_true - S_base).

Each seed runs `prefrl llm demo` with the control arm: one SFT model, then RL on the true score, on learned rewards
(at most `labels` oracle labels) and on a reward model fitted to random labels (the control), all with the same RL
steps, beta and seed. Appends one raw JSON row per seed and arm (learned, shuffled) to
docs/benchmark-results-llm.jsonl; `python scripts/benchmark_tables.py` turns them into the table of
docs/benchmarks.md.

    nice python scripts/benchmark_llm.py --seeds 0 1 2
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from prefrl.errors import exit_status
from prefrl.llm.cli import DemoArgs, demo


@dataclass(frozen=True)
class Args:
    seeds: tuple[int, ...] = (0, 1, 2)
    labels: int = DemoArgs.labels
    steps: int = DemoArgs.steps
    beta: float = DemoArgs.beta
    sft_steps: int = DemoArgs.sft_steps
    out: Path = Path("runs/benchmark-llm")
    results: Path = Path("docs/benchmark-results-llm.jsonl")
    threads: int = 1
    """torch threads (the runs are small; one thread each leaves the other cores to other work)."""


def main(args: Args) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    for seed in args.seeds:
        demo_args = DemoArgs(out=args.out / f"seed{seed}", labels=args.labels, steps=args.steps, beta=args.beta,
                             sft_steps=args.sft_steps, seed=seed, control=True)
        s = demo(demo_args)
        cfg = demo_args.train_config(Path("-"), Path("-"))
        common = {"task": "letters", "seed": seed, "steps": s["steps"], "beta": s["beta"], "budget": args.labels,
                  "num_generations": cfg.num_generations, "lr": cfg.lr, "sft_steps": args.sft_steps,
                  "base_score": s["base_score"], "true_score": s["true_score"], "seconds": s["seconds"],
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        rows = [{**common, "arm": "learned", "labels": s["labels"], "learned_score": s["learned_score"],
                 "gain_ratio": s["gain_ratio"]},
                {**common, "arm": "shuffled", "labels": s["control_labels"], "learned_score": s["control_score"],
                 "gain_ratio": s["control_gain_ratio"]}]
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with args.results.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        logging.info("seed %d: gain ratio %.2f (learned), %.2f (control); %s", seed, s["gain_ratio"],
                     s["control_gain_ratio"], {k: v for k, v in s.items() if k != "samples"})


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args))))
