"""A crashed run resumes from its checkpoints and store with nothing lost."""

import json
import subprocess
import sys
import time

import pytest

from prefrl.checkpoint import load_agent
from prefrl.config import TrainConfig
from prefrl.core.store import PreferenceStore
from prefrl.gym.evaluation import EVAL_SEED_OFFSET, evaluate_agent
from prefrl.loop import train
from prefrl.run_dir import RunDir

_RUN = """
import torch; torch.set_num_threads(1)
from pathlib import Path
from prefrl.config import TrainConfig
from prefrl.loop import train
train(TrainConfig(env="prefrl/PointReach-v0", steps=16_000, labels=120, out=Path({out!r}), update_every=2048,
                  video_steps=0, eval_episodes=1, progress=False))
"""


def test_killed_run_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _RUN.format(out=str(out))])
    state = out / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for a checkpoint past the initial labels, then crash the run
        if state.exists() and json.loads(state.read_text()).get("agent_steps", 0) >= 4096:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    before = json.loads(state.read_text())
    labels_before = PreferenceStore(out / "prefs.sqlite").labels()
    assert 0 < before["env_steps"] < 16_000 and labels_before

    result = train(TrainConfig(out=out, resume=True, progress=False))
    after = PreferenceStore(out / "prefs.sqlite").labels()
    assert result.env_steps >= 16_000
    # every label given before the crash is still there, unchanged, and more were added after
    assert [(lab.id, lab.answer) for lab in after[: len(labels_before)]] == \
           [(lab.id, lab.answer) for lab in labels_before]
    assert len(after) > len(labels_before) and result.labels == 120
    rows = (out / "metrics.csv").read_text().splitlines()
    steps = [int(float(r.split(",")[0])) for r in rows[1:]]
    assert steps == sorted(steps) and steps[-1] >= 16_000
    assert TrainConfig.from_json((out / "config.json").read_text()).steps == 16_000


def test_the_agent_of_the_best_evaluation_is_kept_and_scores_it_again(tmp_path):
    out = tmp_path / "run"
    result = train(TrainConfig(env="prefrl/PointReach-v0", steps=12_000, labels=60, out=out, update_every=2048,
                               eval_every=2048, eval_episodes=3, video_steps=0, progress=False))
    run = RunDir(out)
    rows = [r for r in run.read_metrics() if r["eval_return"] == r["eval_return"]]  # not NaN: evaluated there
    evals = [(r["eval_return"], int(r["env_steps"])) for r in rows]
    evals.append((result.final_true_return, result.env_steps))
    scores = [score for score, _ in evals]
    best = run.read_state()["best"]
    assert len(scores) >= 4 and best["eval_return"] == max(scores)
    assert best["env_steps"] == evals[scores.index(max(scores))][1]  # the first evaluation to reach it is kept
    agent, outer = load_agent(run, best=True)  # the kept agent (and its normaliser) scores what it scored then
    again = evaluate_agent(agent, outer, "prefrl/PointReach-v0", 3, seed=EVAL_SEED_OFFSET)
    assert again == pytest.approx(best["eval_return"])
    assert f"{best['eval_return']:.1f}" in (out / "report.md").read_text()
