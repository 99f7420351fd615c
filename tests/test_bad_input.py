"""Bad input never shows a traceback: each one below, given to the `prefrl` command, prints one line
`prefrl: error: ...` naming the fix, exits with status 2, and changes nothing on disk (the store's bytes and
every run directory's listing stay as they were; a new run directory is not created)."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from prefrl.config import TrainConfig
from prefrl.core.data import Answer
from prefrl.core.dataset import export_labels
from prefrl.core.store import PreferenceStore
from prefrl.interfaces.cli import main
from tests.conftest import make_clip

ENV = "prefrl/PointReach-v0"


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (directories too) with the sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _store(path: Path, rng: np.random.Generator, env: str = "E-v0", lengths: tuple[int, ...] = (5, 5, 5, 5)) -> None:
    """A closed store at `path` holding clips of these lengths, each consecutive pair labelled once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store = PreferenceStore(path, env_id=env)
    ids = [store.add_clip(make_clip(rng, length=n, episode=k, start=n * k)) for k, n in enumerate(lengths)]
    for a, b, answer in zip(ids, ids[1:], [Answer.LEFT, Answer.RIGHT, Answer.EQUAL, Answer.SKIP] * len(ids)):
        store.add_label(store.add_query(a, b, env_step=7), answer, labeler="carol")
    store.close()


@dataclass
class Files:
    """labels.jsonl (3 labels of env E-v0, clips of 5 steps) with labels.clips.npz beside it, and a run directory
    `run` whose store holds clips of the same env and length."""

    tmp: Path
    rng: np.random.Generator

    @property
    def jsonl(self) -> Path:
        return self.tmp / "labels.jsonl"

    @property
    def npz(self) -> Path:
        return self.tmp / "labels.clips.npz"

    @property
    def run(self) -> Path:
        return self.tmp / "run"

    def export(self, env: str = "E-v0", lengths: tuple[int, ...] = (5, 5, 5, 5)) -> None:
        src = self.tmp / f"src-{len(list(self.tmp.glob('src-*')))}" / "prefs.sqlite"
        _store(src, self.rng, env, lengths)
        store = PreferenceStore(src)
        export_labels(store, self.jsonl)
        store.close()

    def edit_line(self, n: int, edit: Callable[[dict], object]) -> None:
        """Replace line `n` (from 1) of labels.jsonl by what `edit` makes of its object (a str is written as is)."""
        lines = self.jsonl.read_text().splitlines()
        new = edit(json.loads(lines[n - 1]))
        lines[n - 1] = new if isinstance(new, str) else json.dumps(new)
        self.jsonl.write_text("\n".join(lines) + "\n")

    def drop_clip(self, side: str, line: int) -> int:
        """Remove the clip named by `side`_clip of line `line` from the .npz; returns its id."""
        cid = json.loads(self.jsonl.read_text().splitlines()[line - 1])[f"{side}_clip"]
        with np.load(self.npz) as z:
            kept = {k: z[k] for k in z.files if not k.startswith(f"{cid}/")}
        np.savez_compressed(self.npz, **kept)
        return int(cid)


@pytest.fixture
def files(tmp_path: Path, rng: np.random.Generator) -> Files:
    f = Files(tmp_path, rng)
    f.export()
    _store(f.run / "prefs.sqlite", rng, lengths=(5, 5))
    return f


def _import(f: Files) -> list[str]:
    return ["import", str(f.jsonl), str(f.run)]


def _import_new(f: Files) -> list[str]:
    return ["import", str(f.jsonl), str(f.tmp / "new")]


def _resume(f: Files) -> list[str]:
    return ["train", "--out", str(f.run), "--resume"]


Spoil = Callable[[Files], object]


def _line(n: int, edit: Callable[[dict], object]) -> Spoil:
    return lambda f: f.edit_line(n, edit)


def _set(key: str, value: object) -> Callable[[dict], dict]:
    return lambda row: {**row, key: value}


def _drop(key: str) -> Callable[[dict], dict]:
    return lambda row: {k: v for k, v in row.items() if k != key}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _replace_store(env: str = "E-v0", lengths: tuple[int, ...] = (5, 5)) -> Spoil:
    def spoil(f: Files) -> None:
        (f.run / "prefs.sqlite").unlink()
        _store(f.run / "prefs.sqlite", f.rng, env, lengths)
    return spoil


def _config(text: Callable[[dict], str]) -> Spoil:
    """Make `run` a run of ENV whose config.json is `text` of the config's JSON object."""
    def spoil(f: Files) -> None:
        cfg = json.loads(TrainConfig(env=ENV, out=f.run).to_json())
        (f.run / "config.json").write_text(text(cfg))
    return spoil


def _nested(key: str, sub: str, value: object) -> Callable[[dict], str]:
    return lambda cfg: json.dumps({**cfg, key: {**cfg[key], sub: value}})


def _nothing(f: Files) -> None:
    pass


# (id, what spoils the files, the command, what its message must say)
CASES: list[tuple[str, Spoil, Callable[[Files], list[str]], str]] = [
    ("empty file", lambda f: f.jsonl.write_text(""), _import, "labels.jsonl is empty (no labels)"),
    ("only blank lines", lambda f: f.jsonl.write_text("\n  \n"), _import, "labels.jsonl is empty"),
    ("empty file, new run", lambda f: f.jsonl.write_text(""), _import_new, "labels.jsonl is empty"),
    ("truncated line", _line(3, lambda r: json.dumps(r)[:40]), _import, "labels.jsonl:3: not JSON"),
    ("truncated line, new run", _line(3, lambda r: json.dumps(r)[:40]), _import_new,
     "labels.jsonl:3: not JSON"),
    ("not an object", _line(2, lambda r: "[1, 2]"), _import, ":2: expected a JSON object, got [1, 2]"),
    ("bad label", _line(2, _set("label", "up")), _import,
     ":2: field 'label' must be one of left/right/equal/skip, got \"up\""),
    ("missing env_id", _line(3, _drop("env_id")), _import, ":3: missing field 'env_id'"),
    ("missing label", _line(1, _drop("label")), _import, ":1: missing field 'label'"),
    ("clip id a string", _line(1, _set("left_clip", "a")), _import,
     ":1: field 'left_clip' must be an integer, got \"a\""),
    ("env_step a float", _line(2, _set("env_step", 1.5)), _import,
     ":2: field 'env_step' must be an integer, got 1.5"),
    ("clip id a bool", _line(1, _set("right_clip", True)), _import, "field 'right_clip' must be an integer, got true"),
    ("labeler a number", _line(1, _set("labeler", 3)), _import,
     ":1: field 'labeler' must be a non-empty string, got 3"),
    ("negative start", _line(1, _set("left_start", -4)), _import,
     ":1: field 'left_start' must be 0 or more, got -4"),
    ("clip_length disagrees with the clips", _line(2, _set("clip_length", 9)), _import,
     ":2: clip_length is 9, but clip"),
    ("absorbing past the clip", _line(1, _set("left_absorbing", 5)), _import, ":1: left_absorbing is 5, but clip"),
    ("missing .clips.npz", lambda f: f.npz.unlink(), _import, "labels.clips.npz is missing"),
    ("missing .clips.npz, new run", lambda f: f.npz.unlink(), _import_new, "labels.clips.npz is missing"),
    ("clip missing from the .npz", lambda f: f.drop_clip("right", 3), _import,
     ":3: clip 4 (right_clip) is missing from"),
    ("truncated .npz", lambda f: f.npz.write_bytes(f.npz.read_bytes()[:200]), _import,
     "labels.clips.npz cannot be read"),
    ("no such file", _nothing, lambda f: ["import", str(f.tmp / "nope.jsonl"), str(f.run)], "no file"),
    ("the .npz given", _nothing, lambda f: ["import", str(f.npz), str(f.run)],
     "holds the clips: give the .jsonl beside it"),
    ("clips of another length than the store's", _replace_store(lengths=(8, 8)), _import,
     "holds clips of 5 steps, the store"),
    ("clips of mixed lengths in the file", lambda f: f.export(lengths=(5, 5, 6, 6)), _import_new,
     "mixes clip lengths"),
    ("clips of another env", _replace_store(env="F-v0"), _import, "import into a run of that env"),
    ("two envs in one file, new run", _line(2, _set("env_id", "F-v0")), _import_new,
     "line 2 holds labels of env 'F-v0', line 1 of 'E-v0'"),
    ("swapped arguments", _nothing, lambda f: ["import", str(f.run), str(f.jsonl)], "swap them: prefrl import "),
    ("swapped arguments, new run", _nothing, lambda f: ["import", str(f.tmp / "new"), str(f.jsonl)],
     "swap them: prefrl import "),
    ("run directory is a file", lambda f: _write(f.tmp / "notes.txt", "x"),
     lambda f: ["import", str(f.jsonl), str(f.tmp / "notes.txt")], "is a file, not a run directory"),
    ("store is not a store", lambda f: _write(f.run / "prefs.sqlite", "garbage" * 100), _import,
     "is not a preference store"),
    ("config: unknown key", _config(lambda c: json.dumps({**c, "stepz": 3})), _resume,
     "config.json: unknown key 'stepz' (did you mean 'steps'?): edit or delete"),
    ("config: unknown nested key", _config(_nested("queries", "clip_lenght", 3)), _resume,
     "unknown key 'queries.clip_lenght' (did you mean 'queries.clip_length'?)"),
    ("config: wrong type", _config(lambda c: json.dumps({**c, "steps": "ten"})), _resume,
     "config.json: 'steps' must be an integer, got \"ten\": edit or delete"),
    ("config: wrong nested type", _config(_nested("queries", "clip_length", 2.5)), _resume,
     "'queries.clip_length' must be an integer or null, got 2.5"),
    ("config: wrong literal", _config(lambda c: json.dumps({**c, "teacher": "oracel"})), _resume,
     "'teacher' must be one of \"oracle\""),
    ("config: list of the wrong items", _config(_nested("agent", "net_arch", [64, "x"])), _resume,
     "'agent.net_arch' must be a list of integers or null"),
    ("config: section not an object", _config(lambda c: json.dumps({**c, "queries": 3})), _resume,
     "'queries' must be a JSON object, got 3"),
    ("config: out of range", _config(_nested("reward_model", "members", 0)), _resume,
     "--reward-model.members must be positive (got 0)"),
    ("config: invalid JSON", _config(lambda c: json.dumps(c)[:-20]), _resume, "config.json is not valid JSON"),
    ("config: empty", _config(lambda c: ""), _resume, "config.json is not valid JSON"),
    ("config: not an object", _config(lambda c: "[]"), _resume, "the top level must be a JSON object"),
]


@pytest.mark.parametrize("spoil, argv, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_prints_one_line_and_changes_nothing(files, spoil, argv, match, capsys):
    spoil(files)
    before = _snapshot(files.tmp)
    store = files.run / "prefs.sqlite"
    store_bytes = store.read_bytes() if store.exists() else None
    capsys.readouterr()
    assert main(argv(files)) == 2
    err = capsys.readouterr().err
    assert err.startswith("prefrl: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert match in err, err
    assert _snapshot(files.tmp) == before
    assert (store.read_bytes() if store.exists() else None) == store_bytes
    assert not (files.tmp / "new").exists()


def test_the_good_files_are_imported(files, capsys):
    """The files the cases above spoil are accepted as exported, into the run and into a new one."""
    assert main(_import(files)) == 0 and main(_import_new(files)) == 0
    assert len(PreferenceStore(files.run / "prefs.sqlite").labels()) == 1 + 3
    assert len(PreferenceStore(files.tmp / "new" / "prefs.sqlite").labels()) == 3


OPTIONS = [
    ("--reward-model.members", "0", "must be positive (got 0): leave it out for the default (3)"),
    ("--reward-model.batch-size", "0", "must be positive"),
    ("--reward-model.epochs", "-1", "must be positive"),
    ("--reward-model.max-updates", "0", "must be positive"),
    ("--reward-model.hidden", "0", "must be positive"),
    ("--reward-model.layers", "-1", "must be 0 or more"),
    ("--reward-model.lr", "0", "must be positive"),
    ("--reward-model.lr", "nan", "must be positive (got nan)"),
    ("--reward-model.l2", "-0.1", "must be 0 or more"),
    ("--reward-model.val-fraction", "1", "must lie in [0, 1) (got 1)"),
    ("--reward-model.random-answer", "-0.5", "must lie in [0, 1)"),
    ("--queries.oversample", "0", "must be positive"),
    ("--queries.max-open", "0", "must be positive"),
    ("--queries.clip-length", "0", "must be positive (got 0): leave it out for the default (25 steps for a "
                                   "synthetic teacher, --queries.clip-seconds for a person)"),
    ("--queries.buffer-clips", "0", "must be positive"),
    ("--queries.decay", "0", "must be positive"),
    ("--queries.initial-fraction", "1.5", "must lie in [0, 1]"),
    ("--queries.reference-fraction", "-0.1", "must lie in [0, 1]"),
    ("--queries.initial-steps", "-1", "must be 0 or more"),
    ("--update-every", "-1", "must be 0 or more"),
    ("--eval-every", "-5", "must be 0 or more"),
    ("--eval-episodes", "-1", "must be 0 or more"),
    ("--video-steps", "-1", "must be 0 or more"),
    ("--threads", "0", "must be positive"),
    ("--teacher-params.seconds-per-label", "-1", "must be 0 or more"),
    ("--queries.max-behind", "-1", "must be 0 or more"),
    ("--queries.clip-seconds", "0", "must be positive"),
    ("--seed", "-1", "must be 0 or more"),
    ("--teacher-params.epsilon", "1.5", "must lie in [0, 1]"),
    ("--teacher-params.gamma", "0", "must lie in (0, 1]"),
    ("--agent.n-envs", "0", "must be positive (got 0): leave it out for the env's preset"),
    ("--agent.n-steps", "0", "must be positive"),
    ("--agent.batch-size", "-8", "must be positive"),
    ("--agent.learning-rate", "-1e-3", "must be positive"),
    ("--agent.gamma", "1.5", "must lie in (0, 1]"),
    ("--agent.gae-lambda", "2", "must lie in [0, 1]"),
    ("--agent.net-arch", "64 0", "must be positive (each value) (got 64 0)"),
]


@pytest.mark.parametrize("flag, value, match", OPTIONS, ids=[f"{f} {v}" for f, v, _ in OPTIONS])
def test_option_out_of_range_is_refused_before_anything_is_written(flag, value, match, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--env", ENV, "--out", str(out), flag, *value.split()]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"prefrl: error: {flag} {match}") and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
