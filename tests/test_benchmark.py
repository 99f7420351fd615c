import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from prefrl.benchmark import (
    arm_config,
    late_return,
    make_jobs,
    markdown,
    plot_curves,
    results_from_runs,
    run_benchmark,
    summarise,
)
from prefrl.config import TrainConfig
from prefrl.errors import PrefrlError
from prefrl.run_dir import RunDir
from tests.conftest import make_clip


def test_arms_name_teacher_labels_and_selection(tmp_path):
    base = TrainConfig(env="prefrl/PointReach-v0", out=tmp_path)
    assert arm_config(base, "true").reward == "true"
    cfg = arm_config(base, "mistake-350-disagreement")
    assert (cfg.teacher, cfg.labels, cfg.queries.selection, cfg.reward) == ("mistake", 350, "disagreement", "learned")
    with pytest.raises(PrefrlError, match="TEACHER-LABELS"):
        arm_config(base, "oracle")
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


def test_summary_gives_both_ratios_and_marks_results_without_late_returns():
    def row(arm: str, final: float, late: float | None) -> dict[str, object]:
        r = {"env": "E", "seed": 0, "arm": arm, "labels": 0, "wall_s": 1.0, "final_true_return": final}
        return r if late is None else {**r, "late_return": late}

    summary = summarise([row("true", 100, 120), row("true", 300, 180), row("oracle-7", 180, 90),
                         row("oracle-7", 220, 150), row("mistake-7", 100, None)], 1000, 0)
    arms = summary["envs"]["E"]
    assert arms["oracle-7"]["ratio_to_true"] == pytest.approx(1.0)
    assert arms["oracle-7"]["late_ratio_to_true"] == pytest.approx(0.8)
    assert arms["mistake-7"]["late_mean"] is None and arms["mistake-7"]["late_ratio_to_true"] is None
    table = markdown(summary, "cmd").splitlines()
    assert "| E | oracle-7 | 2 | 0 | 200 | 180, 220 | 200 | 1.00 | 120 | 0.80 | 1 |" in table
    assert "| E | mistake-7 | 1 | 0 | 100 | 100 | 100 | 0.50 | – | – | 1 |" in table


def test_benchmark_reports_finished_runs_and_smaller_budgets_of_the_same_runs(tmp_path, capsys, monkeypatch):
    summary = run_benchmark(["prefrl/PointReach-v0"], [0], ["true", "oracle-40"], 4096, 2, tmp_path)
    arms = summary["envs"]["prefrl/PointReach-v0"]
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
    plot_curves(tmp_path, tmp_path / "plots" / "curves.png")  # makes the folder
    assert (tmp_path / "plots" / "curves.png").stat().st_size > 10_000
    # the progress script lists every run with its steps, labels and latest evaluation
    progress = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "benchmark_progress.py"))
    progress["main"](tmp_path)
    lines = capsys.readouterr().out.splitlines()[1:]
    assert sorted(line.split()[0] for line in lines) == ["prefrl_PointReach-v0/oracle-40/seed0",
                                                           "prefrl_PointReach-v0/true/seed0"]
    assert all(line.split()[-1] != "-" for line in lines)  # both finished: a final score each

    # scripts/reward_ranks_agents.py scores both arms' agents under the oracle-40 run's reward model
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))  # it imports backflip_frames
    ranks = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "reward_ranks_agents.py"))
    from prefrl.environments import make_env
    from prefrl.loop import saved_reward_model

    env_id, learned_run = "prefrl/PointReach-v0", tmp_path / "prefrl_PointReach-v0" / "oracle-40" / "seed0"
    env = make_env(env_id)
    model = saved_reward_model(learned_run, env.observation_space, env.action_space)
    own = ranks["score_agent"](model, learned_run, env_id, 2, 0)
    assert np.isfinite(own.true_return) and own.length > 1 and -1 <= own.correlation <= 1
    # an episode that ended early is charged the absorbing state's reward for each step it did not play
    clip = make_clip(np.random.default_rng(0), length=5, obs_dim=env.observation_space.shape[0],
                     act_dim=env.action_space.shape[0])
    full = ranks["learned_return"](model, clip, None)
    assert model.absorbing_reward() != 0
    assert ranks["learned_return"](model, clip, 12) == pytest.approx(full + 7 * model.absorbing_reward())
    assert ranks["learned_return"](model, clip, 5) == pytest.approx(full)
