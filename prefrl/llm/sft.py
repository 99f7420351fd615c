"""Supervised fine-tuning before RL: TRL's `SFTTrainer` on prompt-completion JSON Lines.

The loss is on the completion only (TRL's default for prompt-completion data). The output directory holds the
model and its tokenizer, so `from_pretrained` (and `prefrl llm train --model DIR`) load it as they are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pydantic

from prefrl.core.jsonl import json_lines
from prefrl.errors import PrefrlError
from prefrl.llm.model import load_policy, resolve_device

log = logging.getLogger(__name__)


class PromptCompletion(pydantic.BaseModel):
    """One SFT record: {"prompt": "...", "completion": "..."}."""

    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    prompt: str
    completion: str = pydantic.Field(min_length=1)


class PromptOnly(pydantic.BaseModel):
    """One RL prompt: {"prompt": "..."} (other fields are kept out of the way)."""

    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    prompt: str = pydantic.Field(min_length=1)


def read_jsonl(path: Path, record: type[pydantic.BaseModel]) -> list[dict]:
    """Validated records of a JSON Lines file; a bad line raises one PrefrlError naming the line and the field."""
    if not Path(path).is_file():
        raise PrefrlError(f"no file {path}: pass a JSON Lines file with one {record.__doc__} per line")
    out = []
    for n, raw in json_lines(Path(path), f"each line must be one {record.__doc__}"):
        try:
            out.append(record.model_validate(raw).model_dump())
        except pydantic.ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or "(record)"
            raise PrefrlError(f"{path}:{n}: field '{field}': {err['msg']} (each line must be {record.__doc__})") \
                from None
    if not out:
        raise PrefrlError(f"{path} holds no records: write one {record.__doc__} per line")
    return out


@dataclass(frozen=True)
class SftConfig:
    """Supervised fine-tuning of a causal LM on prompt-completion pairs."""

    steps: int = 300
    """Optimiser steps."""
    batch_size: int = 32
    lr: float = 1e-3
    """Learning rate (high, for the tiny model; ~1e-5 for a pretrained one). At 3e-3 the tiny model learnt to read
    the prompt for some seeds only (its loss stayed on the plateau of ignoring it for seed 2 even at 600 steps)."""
    max_length: int = 128
    """Tokens per example (prompt + completion), longer ones truncated."""
    seed: int = 0
    device: str = "auto"
    """cpu | cuda | auto."""


@dataclass(frozen=True)
class SftResult:
    out: Path
    first_loss: float
    last_loss: float
    steps: int


def run_sft(data: Path, model_path: str | Path, out: Path, cfg: SftConfig = SftConfig()) -> SftResult:
    """Fine-tune the model at `model_path` on the records of `data`; write model and tokenizer to `out`."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    records = read_jsonl(data, PromptCompletion)
    device = resolve_device(cfg.device)
    model, tok = load_policy(model_path, device)
    tok.padding_side = "right"  # training pads on the right; sampling (load_policy) on the left
    args = SFTConfig(output_dir=str(out / "checkpoints"), max_steps=cfg.steps,
                     per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.lr, lr_scheduler_type="constant",
                     warmup_steps=0, logging_steps=max(1, cfg.steps // 20), save_strategy="no", report_to="none",
                     seed=cfg.seed, max_length=cfg.max_length, use_cpu=device.type == "cpu", disable_tqdm=True,
                     dataloader_num_workers=0,
                     bf16=False, fp16=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tok)
    trainer.remove_callback(PrinterCallback)  # metrics go to the log, not stdout
    trainer.train()
    out.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(out))
    tok.padding_side = "left"
    tok.save_pretrained(str(out))
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    log.info("SFT: loss %.3f -> %.3f over %d steps; model in %s", losses[0], losses[-1], cfg.steps, out)
    return SftResult(out=out, first_loss=losses[0], last_loss=losses[-1], steps=cfg.steps)
