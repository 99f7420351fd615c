import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from prefrl.config import TrainConfig
from prefrl.errors import PrefrlError
from prefrl.interfaces.benchmark import (
    add_random_returns,
    add_wall_curves,
    arm_config,
    late_return,
    make_jobs,
    plot_curves,
    results_from_runs,
    run_benchmark,
)
from prefrl.interfaces.doc_tables import DocTable, SuiteTable, update_doc_tables
from prefrl.interfaces.rows import append_rows, arm_stats, normalised_ratio, read_rows, runs_table
from prefrl.run_dir import RunDir
from tests.conftest import make_clip


def test_arms_name_teacher_labels_and_selection(tmp_path):
    base = TrainConfig(env="prefrl/PointReach-v0", out=tmp_path)
    assert arm_config(base, "true").reward == "true"
    cfg = arm_config(base, "mistake-350-disagreement")
    assert (cfg.teacher, cfg.labels, cfg.queries.selection, cfg.reward) == ("mistake", 350, "disagreement", "learned")
    with pytest.raises(PrefrlError, match="TEACHER-LABELS"):
        arm_config(base, "oracle")
    sooner = arm_config(base, "oracle-700-sync-decay0.02")  # labels sooner, every fit blocking
    assert (sooner.queries.decay, sooner.reward_model.background, sooner.labels) == (0.02, False, 700)
    assert arm_config(base, "oracle-700").queries.decay == base.queries.decay
    frames = arm_config(base, "oracle-1000-process-allframes")  # every frame of an image clip, fits in a process
    assert (frames.reward_model.image_steps, frames.reward_model.process, frames.labels) == (None, True, 1000)
    paced = arm_config(base, "mistake-1000-decay0.02-paced3s")  # a person's pace: the run waits for the answers
    assert (paced.teacher_params.seconds_per_label, paced.queries.decay, paced.teacher) == (3.0, 0.02, "mistake")
    assert paced.person_paced and not arm_config(base, "mistake-1000").person_paced
    assert not arm_config(base, "oracle-700-nosquares").reward_model.action_squares
    assert arm_config(base, "oracle-700-squares").reward_model.action_squares
    assert arm_config(base, "oracle-700-linsquares").reward_model.squares_lr == 1e-2
    assert arm_config(base, "oracle-700").reward_model.squares_lr is None
    jobs = make_jobs(["prefrl/PointReach-v0"], [0, 1], ["true", "oracle-20"], 10_000, tmp_path)
    assert len(jobs) == 4 and all(j.cfg.eval_every == 1_000 for j in jobs)


def test_late_return_averages_the_last_evaluations_up_to_a_step(tmp_path):
    run = RunDir(tmp_path)
    for step, value in [(100, np.nan), (200, 10.0), (300, np.nan), (400, 20.0), (500, 30.0), (600, 40.0),
                        (700, 100.0)]:
        run.append_metrics({"env_steps": step, "eval_return": value})
    assert late_return(run, 650) == pytest.approx(30.0)  # 20, 30, 40: the evaluation at 700 is past the step
    assert late_return(run, 700, k=2) == pytest.approx(70.0)
    assert late_return(run, 250) == pytest.approx(10.0)  # fewer than k so far: those there are
    assert np.isnan(late_return(run, 150))


def _row(arm: str, final: float, late: float | None, seed: int = 0, env: str = "E") -> dict[str, object]:
    r = {"env": env, "seed": seed, "arm": arm, "labels": 0, "wall_s": 1.0, "final_true_return": final}
    return r if late is None else {**r, "late_return": late}


def test_stats_give_both_ratios_and_mark_results_without_late_returns():
    rows = [_row("true", 100, 120), _row("true", 300, 180, seed=1), _row("oracle-7", 220, 150, seed=1),
            _row("oracle-7", 180, 90), _row("mistake-7", 100, None)]
    arms = arm_stats(rows)["E"]
    assert list(arms) == ["true", "oracle-7", "mistake-7"]  # the true-reward arm first
    assert arms["oracle-7"]["ratio_to_true"] == pytest.approx(1.0)
    assert arms["oracle-7"]["late_ratio_to_true"] == pytest.approx(0.8)
    assert arms["mistake-7"]["late_mean"] is None and arms["mistake-7"]["late_ratio_to_true"] is None
    table = runs_table(rows).splitlines()
    assert table[0].startswith("| env | arm | seeds |") and "mean of last 3 evaluations" in table[0]
    # per seed in seed order; ratios at or above the bar in bold
    assert "| E | oracle-7 | 2 | 0 | 200 | 180, 220 | 200 | **1.00** | 120 | 0.80 | 1 |" in table
    assert "| E | mistake-7 | 1 | 0 | 100 | 100 | 100 | 0.50 | – | – | 1 |" in table
    # without late returns in the rows shown, no late columns; only the arms asked for, in their order
    assert runs_table(rows, arms=["mistake-7", "true"]).splitlines()[2:] == [
        "| E | mistake-7 | 1 | 0 | 100 | 100 | 100 | 0.50 | – | – | 1 |",
        "| E | true | 2 | 0 | 200 | 100, 300 | 200 | – | 150 | – | 1 |"]
    assert "last 3" not in runs_table([_row("true", 100, None), _row("oracle-7", 95, None)])


def test_small_returns_keep_two_decimals_so_a_third_of_a_flip_an_episode_is_not_shown_as_none():
    rows = [_row("true", 1 / 3, 2 / 3), _row("true", 0.0, 1.0, seed=1), _row("true", 3.0, 4.5, seed=2),
            _row("oracle-7", 1234.4, 12.0)]
    table = runs_table(rows).splitlines()
    assert table[2:] == ["| E | true | 3 | 0 | 1.11 | 0.33, 0, 3 | 1.11 | – | 2.06 | – | 1 |",  # whole ones stay whole
                         "| E | oracle-7 | 1 | 0 | 1234 | 1234 | 1234 | **1110.96** | 12 | **5.84** | 1 |"]


def test_doc_tables_are_regenerated_between_their_markers_and_the_prose_is_kept(tmp_path):
    rows = [_row("true", 100, 110), _row("oracle-7", 95, 88), _row("true", 50, 40, env="F"),
            _row("oracle-7", 10, 20, env="F")]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tables = {"all": DocTable(("rows.jsonl",), ("true", "oracle-7")),
              "ratios": DocTable(("rows.jsonl",), ("oracle-7", "mistake-7"), kind="ratios", envs=("E",))}
    doc = tmp_path / "bench.md"
    doc.write_text("# Bench\n\nprose before\n\n<!-- table: all (old note) -->\n| stale |\n<!-- /table -->\n\n"
                   "prose between\n<!-- table: ratios -->\n<!-- /table -->\nprose after\n")
    before = doc.read_text()
    assert update_doc_tables(doc, tmp_path, check=True, tables=tables) == ["all", "ratios"]
    assert doc.read_text() == before  # --check only compares
    assert update_doc_tables(doc, tmp_path, tables=tables) == ["all", "ratios"]
    text = doc.read_text()
    assert text.startswith("# Bench\n\nprose before\n\n<!-- table: all (generated by scripts/benchmark_tables.py "
                           "from rows.jsonl) -->\n| env | arm |")
    assert "| E | oracle-7 | 1 | 0 | 95 | 95 | 95 | **0.95** | 88 | 0.80 | 1 |" in text
    assert "| F | oracle-7 | 1 | 0 | 10 | 10 | 10 | 0.20 | 20 | 0.50 | 1 |" in text
    assert "| E | **0.95** / 0.80 | – |" in text and "| F |" not in text.split("prose between")[1]
    assert "| stale |" not in text and "prose between\n" in text and text.endswith("<!-- /table -->\nprose after\n")
    assert update_doc_tables(doc, tmp_path, check=True, tables=tables) == []
    # a row changes: the check sees it
    (tmp_path / "rows.jsonl").write_text((tmp_path / "rows.jsonl").read_text().replace("95", "99"))
    assert update_doc_tables(doc, tmp_path, check=True, tables=tables) == ["all", "ratios"]

    with pytest.raises(PrefrlError, match="no marker"):
        update_doc_tables(doc, tmp_path, tables={**tables, "new": tables["all"]})
    doc.write_text(text + "<!-- table: all -->\n")
    with pytest.raises(PrefrlError, match="without its"):
        update_doc_tables(doc, tmp_path, tables=tables)


def test_result_rows_are_checked_at_the_edge_and_appended_once(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{**_row("true", 100, 110), "env_steps": 10}, {**_row("oracle-7", 95, 88), "env_steps": 10}]
    assert append_rows(path, rows) == 2
    assert append_rows(path, rows[1:] + [{**rows[1], "seed": 1}]) == 1  # a rerun reports finished runs again
    assert [r["seed"] for r in read_rows(path)] == [0, 0, 1]
    later = {**rows[0], "wall_s": rows[0]["wall_s"] + 7.5, "batch": "later"}  # the same arm run again in a new batch
    assert append_rows(path, [later]) == 1 and append_rows(path, [later]) == 0
    path.write_text(path.read_text() + '{"env": "E", "arm": "true", "seed": 2}\n')
    with pytest.raises(PrefrlError, match=r"rows.jsonl:5: the row has no labels, final_true_return, wall_s"):
        read_rows(path)
    path.write_text("{not json\n")
    with pytest.raises(PrefrlError, match="rows.jsonl:1: not JSON"):
        read_rows(path)
    path.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[0]) + "\n")
    with pytest.raises(PrefrlError, match="appears twice"):
        DocTable(("rows.jsonl",), ("true",)).render(tmp_path)


def test_benchmark_reports_finished_runs_and_smaller_budgets_of_the_same_runs(tmp_path, capsys):
    rows_path = tmp_path / "rows.jsonl"
    results = run_benchmark(["prefrl/PointReach-v0"], [0], ["true", "oracle-40"], 4096, 2, tmp_path,
                            rows_path=rows_path)
    arms = arm_stats(results)["prefrl/PointReach-v0"]
    # each run's row went to the rows file as it finished, with the random policy's return over the same episodes
    rows = read_rows(rows_path)
    assert sorted(r["arm"] for r in rows) == ["oracle-40", "true"]
    assert rows[0]["random_return"] == rows[1]["random_return"] < max(r["final_true_return"] for r in rows)
    assert set(arms) == {"true", "oracle-40"} and arms["oracle-40"]["labels"] == 40
    assert arms["oracle-40"]["ratio_to_true"] is not None or arms["true"]["mean"] <= 0
    logged = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    # at the full budget the run directories give the finished runs' own final scores
    final = {r["arm"]: r["final_true_return"] for r in results_from_runs(tmp_path, 4096)}
    assert final == {r["arm"]: r["final_true_return"] for r in logged}
    assert all(np.isfinite(r["late_return"]) for r in logged)
    # at half the budget, each run's evaluation along the way (as for a run cut off by its machine)
    half = results_from_runs(tmp_path, 2048)
    assert len(half) == 2 and all(2048 <= r["env_steps"] < 4096 for r in half)
    assert all(np.isfinite(r["final_true_return"]) for r in half)
    assert results_from_runs(tmp_path, 8192) == []
    assert [r["arm"] for r in results_from_runs(tmp_path, 4096, arms=["oracle-40"])] == ["oracle-40"]
    # rows of an older batch lacked the wall-time curve and the random return: both are filled in from the runs
    stripped = [{k: v for k, v in r.items() if k not in ("wall_curve", "random_return")} for r in rows]
    stripped[0]["random_return"] = -1.0  # a row that has one keeps it
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in stripped))
    assert add_wall_curves(rows_path, tmp_path / "elsewhere") == 0  # no run there: nothing to fill, nothing made up
    assert add_wall_curves(rows_path, tmp_path) == 2 and add_random_returns(rows_path) == 1
    refilled = read_rows(rows_path)
    assert [r["wall_curve"] for r in refilled] == [r["wall_curve"] for r in rows]
    assert [r["random_return"] for r in refilled] == [-1.0, rows[1]["random_return"]]
    assert add_wall_curves(rows_path, tmp_path) == 0 and add_random_returns(rows_path) == 0
    plot_curves(tmp_path, tmp_path / "plots" / "curves.png")  # makes the folder
    assert (tmp_path / "plots" / "curves.png").stat().st_size > 10_000
    # the progress script lists every run with its steps, labels and latest evaluation
    progress = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "benchmark_progress.py"))
    progress["main"](progress["Args"](root=tmp_path))
    lines = capsys.readouterr().out.splitlines()[1:]
    assert sorted(line.split()[0] for line in lines) == ["prefrl_PointReach-v0/oracle-40/seed0",
                                                           "prefrl_PointReach-v0/true/seed0"]
    assert all(line.split()[-1] != "-" for line in lines)  # both finished: a final score each
    # what each final agent does about ending episodes, and the learned reward's view of it
    check = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "termination_check.py"))
    check["main"](check["Args"](root=tmp_path, episodes=2, out=tmp_path / "termination.jsonl"))
    checked = {r["arm"]: r for r in read_rows(tmp_path / "termination.jsonl", ("env", "arm", "seed"))}
    assert set(checked) == {"true", "oracle-40"} and "margin" not in checked["true"]
    assert checked["oracle-40"]["margin"] == pytest.approx(
        checked["oracle-40"]["live_mean"] - checked["oracle-40"]["absorbing_reward"])
    capsys.readouterr()

    # scripts/reward_ranks_agents.py scores both arms' agents under the oracle-40 run's reward model
    ranks = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "reward_ranks_agents.py"))
    from prefrl.checkpoint import load_reward_model
    from prefrl.gym.environments import make_env

    env_id, learned_run = "prefrl/PointReach-v0", tmp_path / "prefrl_PointReach-v0" / "oracle-40" / "seed0"
    env = make_env(env_id)
    model = load_reward_model(learned_run, env.observation_space, env.action_space)
    own = ranks["score_agent"](model, learned_run, env_id, 2, 0)
    assert np.isfinite(own.true_return) and own.length > 1 and -1 <= own.correlation <= 1
    # an episode that ended early is charged the absorbing state's reward for each step it did not play
    clip = make_clip(np.random.default_rng(0), length=5, obs_dim=env.observation_space.shape[0],
                     act_dim=env.action_space.shape[0])
    full = ranks["learned_return"](model, clip, None)
    assert model.absorbing_reward() != 0
    assert ranks["learned_return"](model, clip, 12) == pytest.approx(full + 7 * model.absorbing_reward())
    assert ranks["learned_return"](model, clip, 5) == pytest.approx(full)
    ranks["main"](ranks["Args"](run=learned_run, agents=[learned_run.parent.parent / "true" / "seed0"], episodes=1))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"reward model of {learned_run}") and len(out) == 4  # heading, header, two agents


def test_the_suite_table_normalises_by_the_random_policy_and_plans_every_task(tmp_path):
    """Returns below zero (Reacher) still give a ratio in [0, 1] when the learned arm sits between random and true;
    a suite names each env's own budget, and an env outside it is refused with the fix."""
    rows = [{"env": "Reacher-v5", "arm": "true", "seed": s, "labels": 0, "final_true_return": -5.0 - s,
             "wall_s": 1.0, "env_steps": 1_000_000, "random_return": -43.0} for s in range(3)]
    rows += [{"env": "Reacher-v5", "arm": "oracle-700", "seed": s, "labels": 700, "final_true_return": -10.0,
              "wall_s": 1.0, "env_steps": 1_000_000, "random_return": -43.0} for s in range(3)]
    rows += [{"env": "Ant-v5", "arm": "true", "seed": 0, "labels": 0, "final_true_return": 900.0, "wall_s": 1.0,
              "env_steps": 1_000_000}]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = SuiteTable(("rows.jsonl",), ("true", "oracle-700")).render(tmp_path)
    reacher = next(line for line in table.splitlines() if line.startswith("| Reacher-v5"))
    assert f"| **{(-10 + 43) / (-6 + 43):.2f}** |" in reacher and "| 3 / 3 |" in reacher and "| -43 |" in reacher
    assert normalised_ratio(-10, -6, -43) == pytest.approx(33 / 37)
    assert normalised_ratio(5, -50, -43) is None  # the true arm no better than random: no ratio
    ant = next(line for line in table.splitlines() if line.startswith("| Ant-v5"))
    assert ant.count("–") >= 3  # no learned arm and no random return yet: nothing to normalise
    # learned rows made before a default changed are left out where it changed (here: every env but Ant)
    newer = {"env": "Reacher-v5", "arm": "oracle-700", "seed": 0, "labels": 700, "final_true_return": -20.0,
             "wall_s": 2.0, "env_steps": 1_000_000, "random_return": -43.0}
    (tmp_path / "new.jsonl").write_text(json.dumps(newer) + "\n")
    table = SuiteTable(("rows.jsonl", "new.jsonl"), ("true", "oracle-700"),
                       learned_only=(("rows.jsonl", ("Ant-v5",)),)).render(tmp_path)
    reacher = next(line for line in table.splitlines() if line.startswith("| Reacher-v5"))
    assert "| 3 / 1 |" in reacher and f"| {(-20 + 43) / (-6 + 43):.2f} |" in reacher
    # an arm run before the default changed to its configuration counts as the default arm
    (tmp_path / "new.jsonl").write_text(json.dumps({**newer, "arm": "oracle-700-squares"}) + "\n")
    table = SuiteTable(("rows.jsonl", "new.jsonl"), ("true", "oracle-700"), learned_only=(("rows.jsonl", ()),),
                       same_as=(("new.jsonl", "oracle-700-squares", "oracle-700"),)).render(tmp_path)
    reacher = next(line for line in table.splitlines() if line.startswith("| Reacher-v5"))
    assert "| 3 / 1 |" in reacher and "| -20 (-20) |" in reacher

    script = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "benchmark_label_efficiency.py"))
    envs, arms, steps = script["plan"](script["Args"](suite="mujoco"))
    assert "Ant-v5" in envs and steps["InvertedPendulum-v5"] == 300_000 and steps["Ant-v5"] == 1_000_000
    assert arms == ["true", "oracle-700"]
    with pytest.raises(PrefrlError, match="not in suite 'atari'.*leave out --suite"):
        script["plan"](script["Args"](suite="atari", envs=["Hopper-v5"]))


def test_cost_ratio_at_equal_load_stops_where_the_first_run_of_the_batch_ended():
    from prefrl.interfaces.doc_tables import equal_load_ratio

    def row(seconds_per_1k: float) -> dict:
        curve = [[s, s / 1000 * seconds_per_1k] for s in range(100_000, 1_000_001, 100_000)]
        return {"wall_curve": curve, "wall_s": curve[-1][1]}

    true, learned = [row(1.0), row(1.0)], [row(1.2)]  # the learned run went on after the true runs ended at 1,000 s
    # the last step that every run had reached by then: 800k (learned at 960 s; at 900k it was at 1,080 s)
    assert equal_load_ratio(learned, true, end=1000.0) == "1.20 (800k)"
    assert equal_load_ratio(learned, true, end=500.0) == "1.20 (400k)"
    assert equal_load_ratio(learned, true, end=50.0) == "–"  # no step before the first end
    assert equal_load_ratio([{"wall_s": 5.0}], true, end=1000.0) == "–"  # rows from before curves were kept


@pytest.mark.parametrize("script, args, says", [
    ("benchmark_label_efficiency.py", ["--envs", "Hopper-v5", "--arms", "oracle-7x0"], "arm 'oracle-7x0'"),
    ("benchmark_tables.py", ["--doc", "no-such.md"], "no such document"),
    ("benchmark_fit_cost.py", ["--repeats", "0", "--out", "rows.jsonl"], "--repeats 1 or more"),
])
def test_scripts_print_one_error_line_for_bad_input(tmp_path, script, args, says):
    import subprocess
    import sys

    path = Path(__file__).parents[1] / "scripts" / script
    done = subprocess.run([sys.executable, str(path), *args, *(["--out", str(tmp_path)] if "label" in script else [])],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line, no traceback
    assert done.stderr.startswith(f"{script}: error: ") and says in done.stderr
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
