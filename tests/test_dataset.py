import json

import numpy as np
import pytest

from prefrl.cli import main
from prefrl.data import Answer
from prefrl.dataset import export_labels, import_labels
from prefrl.errors import PrefrlError
from prefrl.store import PreferenceStore
from tests.conftest import make_clip


def test_export_import_round_trip(tmp_path, rng):
    src = PreferenceStore(tmp_path / "a.sqlite", env_id="E-v0")
    clips = [make_clip(rng, episode=k, start=5 * k) for k in range(4)]
    ids = [src.add_clip(c) for c in clips]
    answers = [Answer.LEFT, Answer.EQUAL, Answer.RIGHT]
    for (i, j), ans in zip([(0, 1), (2, 3), (1, 2)], answers):
        src.add_label(src.add_query(ids[i], ids[j], env_step=7), ans, labeler="carol")
    out = tmp_path / "labels.jsonl"
    assert export_labels(src, out) == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {"query_id", "left_clip", "right_clip", "env_id", "left_start", "clip_length", "label", "labeler",
            "time"} <= set(rows[0])
    assert [r["label"] for r in rows] == ["left", "equal", "right"]
    assert rows[1]["left_start"] == 10 and rows[0]["clip_length"] == 5

    dst = PreferenceStore(tmp_path / "b.sqlite", env_id="E-v0")
    assert import_labels(dst, out) == 3
    got = dst.labelled_pairs()
    assert [lab.answer for _, lab in got] == answers
    assert {lab.labeler for _, lab in got} == {"carol"}
    for (q, _), (i, j) in zip(got, [(0, 1), (2, 3), (1, 2)]):
        np.testing.assert_array_equal(dst.clip(q.left_id).obs, clips[i].obs)
        np.testing.assert_array_equal(dst.clip(q.right_id).true_rewards, clips[j].true_rewards)
    # clips shared by two queries are stored once
    assert len(dst.clip_ids()) == 4


def test_import_into_a_store_of_another_env_is_refused(tmp_path, rng):
    src = PreferenceStore(tmp_path / "a.sqlite", env_id="E-v0")
    c = src.add_clip(make_clip(rng))
    src.add_label(src.add_query(c, c, 0), Answer.LEFT, "x")
    export_labels(src, tmp_path / "l.jsonl")
    with pytest.raises(PrefrlError, match="import into a run of that env"):
        import_labels(PreferenceStore(tmp_path / "b.sqlite", env_id="F-v0"), tmp_path / "l.jsonl")


def test_cli_export_then_import_into_a_new_run(tmp_path, rng, capsys):
    run = tmp_path / "run"
    run.mkdir()
    src = PreferenceStore(run / "prefs.sqlite", env_id="E-v0")
    c1, c2 = src.add_clip(make_clip(rng)), src.add_clip(make_clip(rng))
    src.add_label(src.add_query(c1, c2, 0), Answer.RIGHT, "dan")
    assert main(["export", str(run)]) == 0
    assert main(["import", str(run / "labels.jsonl"), str(tmp_path / "other")]) == 0
    dst = PreferenceStore(tmp_path / "other" / "prefs.sqlite")
    assert dst.env_id == "E-v0" and [lab.answer for lab in dst.labels()] == [Answer.RIGHT]
