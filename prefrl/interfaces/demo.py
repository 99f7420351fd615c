"""`prefrl demo`: the same PPO trained on learned and on true reward, side by side, compared in one report."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import replace
from pathlib import Path

from prefrl.config import TrainConfig
from prefrl.interfaces.benchmark import Job, arm_config, run_jobs
from prefrl.report import plot_runs
from prefrl.run_dir import RunDir


def run_demo(base: TrainConfig) -> str:
    """Train both arms in parallel processes (one core each), through the benchmark's job runner: `base` as given
    (its teacher and labels) into base.out/preferences, and the same on the true reward into base.out/true_reward.
    Then compare them in base.out (report.md, report.png, summary.json) and return the report's text."""
    out = Path(base.out)
    arms = {"preferences": replace(base, out=out / "preferences", progress=False),
            "true reward": replace(arm_config(base, "true"), out=out / "true_reward", progress=False)}
    checked = {name: RunDir.check(cfg)[1] for name, cfg in arms.items()}  # fail now, before any process starts
    env = checked["preferences"].env
    assert env is not None
    jobs = [Job(env, cfg.seed, name, cfg) for name, cfg in checked.items()]
    t0 = time.time()
    run_jobs(jobs, workers=len(jobs), progress=base.progress)
    return write_comparison(out, {name: RunDir(cfg.out) for name, cfg in checked.items()}, env, time.time() - t0)


def write_comparison(out: Path, runs: dict[str, RunDir], env: str, wall_s: float) -> str:
    summaries = {name: run.read_state()["summary"] for name, run in runs.items()}
    pref, true = summaries["preferences"]["final_true_return"], summaries["true reward"]["final_true_return"]
    ratio = pref / true if true > 0 else float("nan")
    teacher = summaries["preferences"].get("teacher", "oracle")
    plot_runs({name: run.read_metrics() for name, run in runs.items()}, out / "report.png",
              f"{env}: PPO on learned reward ({summaries['preferences']['labels']} {teacher} labels) vs true reward")
    result = {"env": env, "arms": summaries, "ratio_preferences_to_true": ratio, "wall_s": round(wall_s, 1),
              "machine": f"{platform.node()} {platform.processor() or platform.machine()}"}
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    text = (f"# prefrl demo: {env}\n\n"
            f"| arm | env steps | labels | final true return (mean of eval episodes) |\n|---|---|---|---|\n"
            + "".join(f"| {n} | {s['env_steps']} | {s['labels']} | {s['final_true_return']:.1f} |\n"
                      for n, s in summaries.items())
            + f"\npreferences / true reward = **{ratio:.2f}**; wall time {wall_s:.0f} s for both arms in parallel."
              f"\n\n![curves](report.png)\n")
    (out / "report.md").write_text(text)
    return text
