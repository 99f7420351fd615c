import json

import numpy as np
import pytest

from prefrl.core.data import Answer
from prefrl.core.dataset import export_labels, import_labels
from prefrl.core.store import PreferenceStore
from prefrl.errors import PrefrlError
from prefrl.interfaces.cli import main
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


def test_a_new_run_learns_from_imported_labels_and_asks_its_own_budget(tmp_path):
    """Labels from another run, imported into a new run's directory, count as the store's head start: the new
    run takes its env from them, still labels its initial clips, fits its model on both before the agent
    starts, and --labels counts only the questions it asks."""
    from prefrl.config import TrainConfig
    from prefrl.loop import train

    def run(out, labels, env=None):
        return train(TrainConfig(env=env, steps=4096, labels=labels, out=out, update_every=2048,
                                 video_steps=0, eval_episodes=1, progress=False))

    run(tmp_path / "first", 30, env="prefrl/PointReach-v0")
    assert main(["export", str(tmp_path / "first")]) == 0
    assert main(["import", str(tmp_path / "first" / "labels.jsonl"), str(tmp_path / "second")]) == 0
    imported = PreferenceStore(tmp_path / "second" / "prefs.sqlite").labels()
    result = run(tmp_path / "second", 20)  # no --env: the imported store names it

    store = PreferenceStore(tmp_path / "second" / "prefs.sqlite")
    labels = store.labels()
    assert len(imported) == 30 and len(labels) == 50 and result.labels == 50
    assert [(lab.id, lab.answer) for lab in labels[:30]] == [(lab.id, lab.answer) for lab in imported]
    first = (tmp_path / "second" / "metrics.csv").read_text().splitlines()[1].split(",")
    initial = TrainConfig(env="prefrl/PointReach-v0", labels=20).initial_labels
    assert initial > 0 and int(first[2]) == 30 + initial  # the initial clips were labelled, on top of the import
    assert float(first[5]) > 0  # and the model was fitted before the agent took a step
    assert store.count_queries("imported") == 30 and store.count_queries("asked") == 20
    assert json.loads((tmp_path / "second" / "config.json").read_text())["env"] == "prefrl/PointReach-v0"


@pytest.mark.parametrize("selection", ["random", "disagreement"])
def test_reference_queries_pair_new_clips_with_clips_asked_about_before(tmp_path, selection):
    """--queries.reference-fraction: that share of the queries after the first batch pairs a new clip with one
    the store already holds; the other queries, and every query of the first batch, show two new clips."""
    from prefrl.config import QueryConfig, TrainConfig
    from prefrl.loop import train

    queries_cfg = QueryConfig(reference_fraction=0.5, selection=selection)
    train(TrainConfig(env="prefrl/PointReach-v0", steps=4096, labels=40, out=tmp_path / "run", update_every=2048,
                      queries=queries_cfg, video_steps=0, eval_episodes=1, progress=False))
    queries = [q for q, _ in PreferenceStore(tmp_path / "run" / "prefs.sqlite").labelled_pairs()]
    seen: set[int] = set()
    first_batch, later = [], []
    for q in queries:
        repeats = len({q.left_id, q.right_id} & seen)
        (first_batch if q.env_step == queries[0].env_step else later).append(repeats)
        seen |= {q.left_id, q.right_id}
    assert len(queries) == 40 and set(first_batch) == {0}
    assert set(later) <= {0, 1} and 0.3 < np.mean(later) < 0.7  # about half: one new clip against a known one


def test_a_run_of_another_env_over_imported_labels_is_refused_before_anything_is_written(tmp_path):
    from prefrl.config import TrainConfig
    from prefrl.loop import train

    (tmp_path / "run").mkdir()
    PreferenceStore(tmp_path / "run" / "prefs.sqlite", env_id="prefrl/PointReach-v0")  # as `prefrl import` leaves it
    with pytest.raises(PrefrlError, match="holds clips of env 'prefrl/PointReach-v0'.*--env prefrl/PointReach-v0"):
        train(TrainConfig(env="Pendulum-v1", steps=2048, labels=10, out=tmp_path / "run", progress=False))
    assert not {"config.json", "agent", "reward_model"} & {p.name for p in (tmp_path / "run").iterdir()}


def test_json_lines_names_the_file_the_line_and_the_fix(tmp_path):
    from prefrl.core.jsonl import json_lines
    from prefrl.errors import PrefrlError

    f = tmp_path / "rows.jsonl"
    f.write_text('{"a": 1}\n\n  \n[2]\n{"b": \n')
    with pytest.raises(PrefrlError, match=r"rows.jsonl:5: not JSON \(.*column \d+\): one row a line"):
        list(json_lines(f, "one row a line"))
    lines = json_lines(f, "x")  # blank lines skipped, line numbers kept
    assert next(lines) == (1, {"a": 1}) and next(lines) == (4, [2])
    f.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(PrefrlError, match="rows.jsonl is not a text file: give a JSONL file"):
        list(json_lines(f, "one row a line", file_fix="give a JSONL file"))
