"""Labels leave the tool and come back: JSON Lines (one object per label) plus the clips' arrays.

`export` writes FILE.jsonl and FILE.clips.npz beside it; `import_labels` reads both into a store. An import reads
and checks the whole dataset (every line, every clip) before it writes anything, so a refused one leaves the store
as it was.
"""

from __future__ import annotations

import json
import sqlite3
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.core.data import Answer, Clip
from prefrl.core.jsonl import json_lines
from prefrl.core.store import PreferenceStore, Store
from prefrl.errors import PrefrlError

_ARRAYS = ("obs", "acts", "true_rewards", "states", "frames")
_REEXPORT = "export the labels again with `prefrl export RUN_DIR` (it writes both files)"


def clips_path(jsonl: Path) -> Path:
    return jsonl.with_suffix(".clips.npz")


def export_labels(store: Store, out: Path) -> int:
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


@dataclass(frozen=True)
class LabelRow:
    """One checked line of an exported .jsonl: a query about two clips (by their ids in the .clips.npz) and its
    answer. `line` is the line number in the file, for messages."""

    line: int
    env_id: str
    left_clip: int
    right_clip: int
    left_start: int
    left_episode: int
    right_start: int
    right_episode: int
    env_step: int
    label: Answer
    labeler: str
    left_absorbing: int = 0
    right_absorbing: int = 0
    clip_length: int | None = None


@dataclass(frozen=True)
class LabelFile:
    """An exported dataset, read and checked whole. `clips` maps a clip id of the file to its arrays
    (obs, acts, true_rewards: (T, ...); states, frames where exported), all clips of one length T."""

    path: Path
    rows: list[LabelRow]
    clips: dict[int, dict[str, np.ndarray]]

    @property
    def env_id(self) -> str:
        return self.rows[0].env_id

    @property
    def clip_length(self) -> int:
        return int(next(iter(self.clips.values()))["obs"].shape[0])


# The fields of one line: type, and whether a line must have it. Others (query_id, time) are ignored.
_FIELDS: dict[str, tuple[type, bool]] = {
    "env_id": (str, True), "left_clip": (int, True), "right_clip": (int, True), "left_start": (int, True),
    "left_episode": (int, True), "right_start": (int, True), "right_episode": (int, True), "env_step": (int, True),
    "label": (Answer, True), "labeler": (str, True), "left_absorbing": (int, False), "right_absorbing": (int, False),
    "clip_length": (int, False),
}
_NON_NEGATIVE = ("left_clip", "right_clip", "left_start", "right_start", "env_step", "left_absorbing",
                 "right_absorbing", "clip_length")


class _LineError(Exception):
    """What is wrong with one line (the caller adds the file, the line number and the fix)."""


def _row(raw: Any, line: int) -> LabelRow:
    """One parsed line checked against _FIELDS."""
    if not isinstance(raw, dict):
        raise _LineError(f"expected a JSON object, got {_show(raw)}")
    values: dict[str, Any] = {}
    for name, (kind, required) in _FIELDS.items():
        if name not in raw:
            if required:
                raise _LineError(f"missing field '{name}'")
            continue
        value = raw[name]
        if kind is Answer:
            if value not in [a.value for a in Answer]:
                raise _LineError(f"field '{name}' must be one of {'/'.join(a.value for a in Answer)}, "
                                 f"got {_show(value)}")
            value = Answer(value)
        elif kind is int and (not isinstance(value, int) or isinstance(value, bool)):
            raise _LineError(f"field '{name}' must be an integer, got {_show(value)}")
        elif kind is str and not (isinstance(value, str) and value):
            raise _LineError(f"field '{name}' must be a non-empty string, got {_show(value)}")
        if name in _NON_NEGATIVE and value < 0:
            raise _LineError(f"field '{name}' must be 0 or more, got {value}")
        values[name] = value
    return LabelRow(line=line, **values)


def read_labels(src: Path) -> LabelFile:
    """Read and check an exported dataset: every line of `src` and every clip it names in `src`.clips.npz.
    Raises PrefrlError naming the file, the line and the fix at the first thing wrong."""
    npz = clips_path(src)
    if src.is_dir():
        raise PrefrlError(f"{src} is a directory: give the .jsonl that `prefrl export` wrote (e.g. {src}/labels.jsonl)")
    if src.name.endswith(".clips.npz"):
        raise PrefrlError(f"{src} holds the clips: give the .jsonl beside it "
                          f"({src.with_name(src.name.removesuffix('.clips.npz') + '.jsonl')})")
    if not src.exists():
        raise PrefrlError(f"no file {src}: give the .jsonl that `prefrl export` wrote")
    if not npz.exists():
        raise PrefrlError(f"{npz} is missing (it holds the clips of {src}): put it beside {src}, or {_REEXPORT}")
    rows: list[LabelRow] = []
    for n, raw in json_lines(src, f"fix or delete that line, or {_REEXPORT}",
                             file_fix="give the .jsonl that `prefrl export` wrote"):
        try:
            rows.append(_row(raw, n))
        except _LineError as e:
            raise PrefrlError(f"{src}:{n}: {e}: fix or delete that line, or {_REEXPORT}") from None
    if not rows:
        raise PrefrlError(f"{src} is empty (no labels): {_REEXPORT}, from a run that has labels")
    for row in rows:
        if row.env_id != rows[0].env_id:
            raise PrefrlError(f"{src} line {row.line} holds labels of env '{row.env_id}', line {rows[0].line} of "
                              f"'{rows[0].env_id}': a run is of one env: split the file by env_id, and import each "
                              "part into its own run")
    return LabelFile(src, rows, _read_clips(src, rows))


def _read_clips(src: Path, rows: list[LabelRow]) -> dict[int, dict[str, np.ndarray]]:
    """The arrays of every clip the rows name, checked: present, of one length, of one shape across clips."""
    npz = clips_path(src)
    clips: dict[int, dict[str, np.ndarray]] = {}
    first: tuple[int, dict[str, np.ndarray]] | None = None
    try:
        with np.load(npz) as z:
            for row in rows:
                for side in ("left", "right"):
                    cid: int = getattr(row, f"{side}_clip")
                    if cid not in clips:
                        if any(f"{cid}/{name}" not in z for name in _ARRAYS[:3]):
                            raise PrefrlError(f"{src}:{row.line}: clip {cid} ({side}_clip) is missing from "
                                              f"{npz}: the two files must come from one export: {_REEXPORT}")
                        clips[cid] = {n: z[f"{cid}/{n}"] for n in _ARRAYS if f"{cid}/{n}" in z}
                        _check_clip(src, row.line, cid, clips[cid], first)
                        first = first or (cid, clips[cid])
                    absorbing: int = getattr(row, f"{side}_absorbing")
                    if absorbing >= len(clips[cid]["obs"]):
                        raise PrefrlError(f"{src}:{row.line}: {side}_absorbing is {absorbing}, but clip {cid} "
                                          f"has {len(clips[cid]['obs'])} steps: fix that line, or {_REEXPORT}")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise PrefrlError(f"{npz} cannot be read ({type(e).__name__}: {e}; truncated?): {_REEXPORT}") from None
    _check_clip_lengths(src, rows, clips)
    return clips


def _check_clip(src: Path, line: int, cid: int, arrays: dict[str, np.ndarray],
                first: tuple[int, dict[str, np.ndarray]] | None) -> None:
    """One clip's arrays agree in length, and in shape with the file's first clip."""
    lengths = {name: a.shape[0] if a.ndim else 0 for name, a in arrays.items()}
    if arrays["true_rewards"].ndim != 1 or len(set(lengths.values())) != 1 or lengths["obs"] == 0:
        shown = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise PrefrlError(f"{clips_path(src)}: clip {cid} (line {line}) has arrays of mismatched steps ({shown}): "
                          f"{_REEXPORT}")
    if first is not None:
        for name in ("obs", "acts"):
            if arrays[name].shape[1:] != first[1][name].shape[1:]:
                raise PrefrlError(f"{clips_path(src)}: clip {cid} (line {line}) has {name} of shape "
                                  f"{arrays[name].shape[1:]} per step, clip {first[0]} of {first[1][name].shape[1:]}: "
                                  f"one file holds clips of one env: {_REEXPORT}")


def _check_clip_lengths(src: Path, rows: list[LabelRow], clips: dict[int, dict[str, np.ndarray]]) -> None:
    """All clips of the file have one length (a store holds clips of one length), and the one each line says."""
    first = rows[0].left_clip
    length = len(clips[first]["obs"])
    for row in rows:
        for cid in (row.left_clip, row.right_clip):
            if len(clips[cid]["obs"]) != length:
                raise PrefrlError(f"{src} mixes clip lengths: clip {first} (line {rows[0].line}) has {length} steps, "
                                  f"clip {cid} (line {row.line}) {len(clips[cid]['obs'])}: a run's clips all have one "
                                  "length: split the file by clip_length, and import each part into its own run")
            if row.clip_length is not None and len(clips[cid]["obs"]) != row.clip_length:
                raise PrefrlError(f"{src}:{row.line}: clip_length is {row.clip_length}, but clip {cid} has "
                                  f"{len(clips[cid]['obs'])} steps: fix that line, or {_REEXPORT}")


def import_labels(store: Store, src: Path) -> int:
    """Add the labels of an exported dataset (and their clips) to `store`; returns how many. The whole dataset is
    checked, against the store too (env, clip length), before anything is written."""
    labels = read_labels(src)
    check_fits(labels, store.env_id or labels.env_id, store.clip_lengths(), store.path)
    return _add(store, labels)


def import_into_run(store_path: Path, src: Path) -> int:
    """`prefrl import`: add an exported dataset to the store at `store_path`, creating it (and its directory) for
    a new run, whose env is then the file's. Nothing is created or changed unless the import is accepted."""
    labels = read_labels(src)
    env_id, lengths = _stored_env_and_lengths(store_path) if store_path.exists() else (None, set())
    env_id = env_id or labels.env_id
    check_fits(labels, env_id, lengths, store_path)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store = PreferenceStore(store_path, env_id=env_id)
    try:
        return _add(store, labels)
    finally:
        store.close()


def check_fits(labels: LabelFile, env_id: str, lengths: set[int], store_path: Path) -> None:
    """The dataset can go into a store of `env_id` holding clips of `lengths` steps (none yet: any length)."""
    if labels.env_id != env_id:
        raise PrefrlError(f"{labels.path} holds labels of env '{labels.env_id}', the store {store_path} is for "
                          f"'{env_id}': import into a run of that env")
    if lengths and lengths != {labels.clip_length}:
        raise PrefrlError(f"{labels.path} holds clips of {labels.clip_length} steps, the store {store_path} clips of "
                          f"{', '.join(map(str, sorted(lengths)))}: import into a new run directory, and train it "
                          f"with --queries.clip-length {labels.clip_length}")


def _stored_env_and_lengths(path: Path) -> tuple[str | None, set[int]]:
    """The env and clip lengths of an existing store, read without writing: opening a PreferenceStore updates its
    schema rows, which would change the file of a store whose import is then refused."""
    try:
        conn = sqlite3.connect(path)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='env_id'").fetchone()
            lengths = {int(r[0]) for r in conn.execute("SELECT DISTINCT length FROM clips")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise PrefrlError(f"{path} is not a preference store ({e}): give a run directory made by `prefrl train` "
                          "or `prefrl import`, or a new one") from None
    return (None if row is None else str(row[0])), lengths


def _add(store: Store, labels: LabelFile) -> int:
    new_ids: dict[int, int] = {}
    for row in labels.rows:
        for side in ("left", "right"):
            cid = getattr(row, f"{side}_clip")
            if cid not in new_ids:
                a = labels.clips[cid]
                new_ids[cid] = store.add_clip(Clip(
                    obs=a["obs"], acts=a["acts"], true_rewards=a["true_rewards"], states=a.get("states"),
                    frames=a.get("frames"), env_step=row.env_step, episode=getattr(row, f"{side}_episode"),
                    start=getattr(row, f"{side}_start"), absorbing=getattr(row, f"{side}_absorbing")))
        qid = store.add_query(new_ids[row.left_clip], new_ids[row.right_clip], env_step=row.env_step,
                              origin="imported")
        store.add_label(qid, row.label, row.labeler)
    return len(labels.rows)


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
