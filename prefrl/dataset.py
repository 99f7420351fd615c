"""Labels leave the tool and come back: JSON Lines (one object per label) plus the clips' arrays.

`export` writes FILE.jsonl and FILE.clips.npz beside it; `import_labels` reads both into a store.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from prefrl.data import Answer, Clip
from prefrl.errors import PrefrlError
from prefrl.store import PreferenceStore

_ARRAYS = ("obs", "acts", "true_rewards", "states", "frames")


def clips_path(jsonl: Path) -> Path:
    return jsonl.with_suffix(".clips.npz")


def export_labels(store: PreferenceStore, out: Path) -> int:
    """Write every standing label of `store` to `out` (JSON Lines) and its clips to `out`.clips.npz."""
    pairs = store.labelled_pairs()
    arrays: dict[str, np.ndarray] = {}
    meta: dict[int, Clip] = {}
    with out.open("w") as f:
        for q, lab in pairs:
            for cid in (q.left_id, q.right_id):
                if cid not in meta:
                    meta[cid] = clip = store.clip(cid)
                    for name in _ARRAYS:
                        value = getattr(clip, name)
                        if value is not None:
                            arrays[f"{cid}/{name}"] = value
            left, right = meta[q.left_id], meta[q.right_id]
            f.write(json.dumps({
                "query_id": q.id, "left_clip": q.left_id, "right_clip": q.right_id, "env_id": store.env_id,
                "left_start": left.start, "left_episode": left.episode, "right_start": right.start,
                "right_episode": right.episode, "clip_length": left.length, "env_step": q.env_step,
                "left_absorbing": left.absorbing, "right_absorbing": right.absorbing,
                "label": lab.answer.value, "labeler": lab.labeler, "time": lab.created,
            }) + "\n")
    np.savez_compressed(clips_path(out), **arrays)  # type: ignore[arg-type]
    return len(pairs)


def import_labels(store: PreferenceStore, src: Path) -> int:
    """Add the labels of an exported dataset (and their clips) to `store`; returns how many."""
    if not src.exists() or not clips_path(src).exists():
        raise PrefrlError(f"need both {src} and {clips_path(src)}: pass the .jsonl that `prefrl export` wrote")
    rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    new_ids: dict[int, int] = {}
    with np.load(clips_path(src)) as z:
        for row in rows:
            if row["env_id"] != store.env_id:
                raise PrefrlError(f"{src} holds labels of env '{row['env_id']}', the store is for "
                                  f"'{store.env_id}': import into a run of that env")
            for side in ("left", "right"):
                cid = int(row[f"{side}_clip"])
                if cid not in new_ids:
                    a = {n: z[f"{cid}/{n}"] for n in _ARRAYS if f"{cid}/{n}" in z}
                    new_ids[cid] = store.add_clip(Clip(
                        obs=a["obs"], acts=a["acts"], true_rewards=a["true_rewards"], states=a.get("states"),
                        frames=a.get("frames"), env_step=int(row["env_step"]), episode=int(row[f"{side}_episode"]),
                        start=int(row[f"{side}_start"]), absorbing=int(row.get(f"{side}_absorbing", 0))))
            qid = store.add_query(new_ids[int(row["left_clip"])], new_ids[int(row["right_clip"])],
                                  env_step=int(row["env_step"]))
            store.add_label(qid, Answer(row["label"]), str(row["labeler"]))
    return len(rows)
