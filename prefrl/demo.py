"""`prefrl demo`: the same PPO trained on learned and on true reward, side by side, compared in one report."""

from __future__ import annotations

import json
import multiprocessing as mp
import platform
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from prefrl.config import TrainConfig
from prefrl.report import plot_runs
from prefrl.run_dir import RunDir


def _arm(cfg: TrainConfig) -> None:
    import torch

    torch.set_num_threads(1)
    from prefrl.loop import train

    train(cfg)


def run_demo(env: str, steps: int, labels: int, seed: int, out: Path) -> str:
    """Run both arms in parallel processes (one core each); return the report's text."""
    base = TrainConfig(env=env, steps=steps, labels=labels, seed=seed, progress=False)
    arms = {"preferences": replace(base, out=out / "preferences"),
            "true reward": replace(base, reward="true", out=out / "true_reward")}
    for cfg in arms.values():
        RunDir.check(cfg)  # fail now, in this process, on a bad env or an occupied directory
    ctx = mp.get_context("spawn")
    procs = {name: ctx.Process(target=_arm, args=(cfg,), name=name) for name, cfg in arms.items()}
    t0 = time.time()
    for p in procs.values():
        p.start()
    bars = {name: tqdm(total=steps, desc=name, unit="step", position=i) for i, name in enumerate(arms)}
    while any(p.is_alive() for p in procs.values()):
        time.sleep(2)
        for name, cfg in arms.items():
            rows = RunDir(cfg.out).read_metrics()
            if rows:
                bars[name].n = int(rows[-1]["env_steps"])
                bars[name].refresh()
    for bar in bars.values():
        bar.close()
    failed = [name for name, p in procs.items() if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"demo arm(s) {failed} failed; see their run directories under {out}")
    return write_comparison(out, {name: RunDir(cfg.out) for name, cfg in arms.items()}, env, time.time() - t0)


def write_comparison(out: Path, runs: dict[str, RunDir], env: str, wall_s: float) -> str:
    summaries = {name: run.read_state()["summary"] for name, run in runs.items()}
    pref, true = summaries["preferences"]["final_true_return"], summaries["true reward"]["final_true_return"]
    ratio = pref / true if true > 0 else float("nan")
    plot_runs({name: run.read_metrics() for name, run in runs.items()}, out / "report.png",
              f"{env}: PPO on learned reward ({summaries['preferences']['labels']} oracle labels) vs true reward")
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
