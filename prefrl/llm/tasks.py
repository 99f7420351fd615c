"""The benchmark text task: write letters, as many of the named one as you can.

A prompt names a target letter ("letter: c\\n"); the SFT model learns to write `LENGTH` random letters, the named
one a little more often than the others (`DEMO_SHARE`), so it reads the prompt but does the task poorly, as a
pretrained model does a task before RLHF; the true score of a completion is the share of its characters that are
the named letter. Any reward model that scores well must read the prompt: the same completion is good for one
prompt and bad for another.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LETTERS = "abcdefgh"
"""The letters of the task (eight: random text then holds the target 1/8 of the time, so pairs differ)."""
LENGTH = 16
"""Letters in a completion."""
PREFIX = "letter: "
DEMO_SHARE = 0.25
"""Chance that a demonstration's letter is the named one (the rest uniform over the letters). A model trained on
demonstrations with no hint of the target (1/8) ignores the prompt, and RL alone did not teach the tiny model to
read it (true score 0.13 throughout); with a hint, SFT learns to read the prompt (0.27) and RL sharpens it (0.99)."""


def prompt_for(letter: str) -> str:
    return f"{PREFIX}{letter}\n"


def target_of(prompt: str) -> str:
    """The letter a prompt names ("" when the prompt is not one of this task's)."""
    line = prompt.strip().splitlines()[-1] if prompt.strip() else ""
    return line[len(PREFIX):].strip()[:1] if line.startswith(PREFIX) else ""


def letter_share(prompt: str, completion: str) -> float:
    """True score: the share of the completion's first `LENGTH` characters that are the prompt's letter.

    Example:
        >>> letter_share("letter: c\\n", "ccab")
        0.125
    """
    target = target_of(prompt)
    if not target:
        return 0.0
    return sum(ch == target for ch in completion[:LENGTH]) / LENGTH


def demos(n: int, rng: np.random.Generator, letters: str = LETTERS,
          share: float = DEMO_SHARE) -> list[dict[str, str]]:
    """SFT records: a prompt naming a random letter, and `LENGTH` letters, each the named one with chance `share`,
    else uniform over `letters`."""
    alphabet = np.array(list(letters))
    out = []
    for _ in range(n):
        target = str(rng.choice(alphabet))
        chars = np.where(rng.random(LENGTH) < share, target, rng.choice(alphabet, LENGTH))
        out.append({"prompt": prompt_for(target), "completion": "".join(chars)})
    return out


def prompts(n: int, rng: np.random.Generator, letters: str = LETTERS) -> list[str]:
    return [prompt_for(str(c)) for c in rng.choice(np.array(list(letters)), n)]


def write_jsonl(path: Path, records: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
