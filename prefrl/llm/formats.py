"""TRL's preference format: JSON Lines of {"prompt", "chosen", "rejected"} (what DPOTrainer and RewardTrainer read).

Export writes every decided label between two text clips (ties and skips carry no choice and are left out); import
stores each record as two clips and an answered query (origin "imported", so the run's label budget ignores it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydantic

from prefrl.core.data import Answer, Clip
from prefrl.core.store import PreferenceStore, Store
from prefrl.errors import PrefrlError
from prefrl.llm.sft import read_jsonl

TEXT_ENV = "text"
"""The env id of a text run's store (what `prefrl llm train` writes)."""


class PreferenceRecord(pydantic.BaseModel):
    """{"prompt": "...", "chosen": "...", "rejected": "..."}"""

    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    prompt: str
    chosen: str
    rejected: str


def export_preference(store: Store, path: Path) -> int:
    """Write the store's decided comparisons of text clips to `path`; returns how many records were written."""
    n = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for q, label in store.labelled_pairs():
            if label.answer not in (Answer.LEFT, Answer.RIGHT):
                continue
            left, right = store.clip(q.left_id), store.clip(q.right_id)
            if left.completion is None or right.completion is None:
                raise PrefrlError(f"{store.path} holds clips of behaviour, not text: --format preference is for "
                                  "runs of `prefrl llm train`; use the default format")
            if left.prompt != right.prompt:
                continue  # TRL's format has one prompt per pair
            chosen, rejected = (left, right) if label.answer is Answer.LEFT else (right, left)
            f.write(json.dumps({"prompt": left.prompt, "chosen": chosen.completion,
                                "rejected": rejected.completion}) + "\n")
            n += 1
    return n


def import_preference(store: Store, path: Path, labeler: str = "import") -> int:
    """Add each record of `path` as a labelled comparison (chosen on the left); returns how many were added."""
    records = read_jsonl(path, PreferenceRecord)
    for r in records:
        ids = []
        for completion in (r["chosen"], r["rejected"]):
            clip = Clip(obs=np.zeros((1, 0), dtype=np.int64), acts=np.zeros((1, 0), dtype=np.float32),
                        true_rewards=np.array([np.nan]), prompt=r["prompt"], completion=completion)
            ids.append(store.add_clip(clip))
        store.add_label(store.add_query(ids[0], ids[1], env_step=0, origin="imported"), Answer.LEFT, labeler)
    return len(records)


def import_preference_into_run(store_path: Path, src: Path, labeler: str = "import") -> int:
    """`prefrl import FILE RUN --format preference`: validate every record of `src`, then add them to the store at
    `store_path` (created, for env "text", in a new run directory); returns how many were added."""
    read_jsonl(src, PreferenceRecord)  # a malformed file changes nothing
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store = PreferenceStore(store_path, env_id=TEXT_ENV)
    try:
        return import_preference(store, src, labeler)
    finally:
        store.close()
