"""The RLHF loop of Christiano et al. (2017), in one function whose stages are named.

    1. clips of the initial random policy are labelled and the reward model is fitted to them;
    2. the agent (PPO) learns on the learned reward, in chunks; after each chunk but the last, a label round:
       a. new clips are paired and asked about, as the label schedule says,
       b. the teacher answers (through the store; a person is waited for where the loop must),
       c. the reward model is refitted on every label so far;
    3. the final agent is scored on the true reward, and a report and a video are written;
    4. with --retrain-steps, a new agent learns from scratch on the final reward model held fixed, in RUN/retrain.
With --eval-every, whenever an evaluation (along the way, or the final one) beats every earlier one, that agent is kept
in RUN/best.

The parts are built in `prefrl.session`; the label machinery (what is due, ask, answer, refit) is
`prefrl.core.labels.Preferences`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefrl.config import TrainConfig
from prefrl.core.store import open_store
from prefrl.gym.evaluation import record_video
from prefrl.report import write_report
from prefrl.run_dir import RunDir
from prefrl.session import Session

log = logging.getLogger(__name__)

LabelWindow = Callable[[Path, "str | None"], AbstractContextManager[Any]]
"""Opens a labelling window on a run directory for a labeller and closes it on exit
(`prefrl.ui.window.label_window`)."""


RETRAIN = "retrain"
"""The subdirectory of a run where --retrain-steps trains its new agent."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    env_steps: int
    labels: int
    final_true_return: float
    wall_s: float
    retrain: TrainResult | None = None
    """The new agent trained on the final reward model held fixed (--retrain-steps), in RUN/retrain."""


def train(cfg: TrainConfig, window: LabelWindow | None = None) -> TrainResult:
    """Run (or resume) one training run and write its run directory.

    `window`: with `--teacher human`, opens the labelling window for the run, and closes it when the run ends or
    fails (the CLI passes the pygame one; without it, label from another terminal with `prefrl label RUN`).
    """
    run, cfg = RunDir.prepare(cfg)
    first = run.read_state().get("summary")
    if cfg.retrain_steps > 0 and first is not None and first["env_steps"] >= cfg.steps:
        # resumed after the first phase ended: only the second is left
        result = TrainResult(run.path, first["env_steps"], first["labels"], first["final_true_return"],
                             first["wall_s"])
    else:
        result = _train(run, cfg, window)
    if cfg.retrain_steps == 0 or result.env_steps < cfg.steps:  # none asked for, or the person stopped the run
        return result
    again = _retrain(run, cfg)
    state = run.read_state()
    state["summary"]["retrain"] = {"run_dir": RETRAIN, "env_steps": again.env_steps,
                                   "final_true_return": again.final_true_return,
                                   "best": RunDir(again.run_dir).read_state().get("best"), "wall_s": again.wall_s}
    run.write_state(state)
    store = open_store(run.path, cfg.store, cfg.env_id)
    try:
        write_report(run, _title(cfg), store)
    finally:
        store.close()
    return dataclasses.replace(result, retrain=again)


def _retrain(run: RunDir, cfg: TrainConfig) -> TrainResult:
    """Stage 4: a new agent, from scratch, on the run's final reward model held fixed (--retrain-steps). It asks
    nobody and opens no store; the run directory is its own, so it resumes like any run."""
    out = run.path / RETRAIN
    again = dataclasses.replace(cfg, reward_from=run.path, out=out, steps=cfg.retrain_steps, retrain_steps=0,
                                store=None, resume=RunDir(out).config.exists())
    log.info("training a new agent for %d steps on the final reward model, held fixed, in %s", cfg.retrain_steps, out)
    return train(again)


def _train(run: RunDir, cfg: TrainConfig, window: LabelWindow | None) -> TrainResult:
    """Stages 1 to 3."""
    with ExitStack() as stack:
        s = stack.enter_context(Session.open(cfg, run))
        prefs, wrapper = s.prefs, s.wrapper
        if window is not None and prefs is not None and prefs.teacher is None and cfg.window:
            stack.enter_context(window(run.path, cfg.labeler))

        # Stage 1: clips of the initial random policy, labelled before RL starts (a person is waited for). A store
        # imported before the run (`prefrl import`) is learned from too; the budget counts only what this run asks.
        if prefs is not None and not s.resumed:
            s.collect_random(cfg.random_steps)
            s.label_round()
            s.log()
            s.checkpoint()

        # Stage 2: the agent learns on the learned reward, in chunks; a label round after each but the last, which
        # trains on every answer given (a person who falls far behind pauses the agent).
        while wrapper.env_step < cfg.steps and not s.stop_requested():
            before = wrapper.env_step
            s.learn(min(s.chunk, cfg.steps - before))
            if wrapper.env_step < cfg.steps:
                s.label_round(last=wrapper.env_step + s.chunk >= cfg.steps)
            score = s.score() if s.eval_due(before) else float("nan")
            s.log(score)
            s.checkpoint()
            s.keep_if_best(score)

        # Stage 3: the final agent scored on the true reward; the report and a video.
        final = s.score()
        if cfg.eval_every > 0:  # without evaluations along the way the best agent is the final one, in agent/
            s.keep_if_best(final)
        summary = {"env": cfg.env, "reward": cfg.reward, "teacher": cfg.teacher if cfg.asks_for_labels else None,
                   "reward_from": None if cfg.reward_from is None else str(cfg.reward_from), "seed": cfg.seed,
                   "env_steps": wrapper.env_step, "labels": s.labels(), "final_true_return": final,
                   "random_return": s.random_score(), "absorbing_reward": s.absorbing_reward(),
                   "absorbing_learned": s.absorbing_reward(learned=True),
                   "live_floor": s.live_floor(), "best": run.read_state().get("best"),
                   "wall_s": round(s.elapsed(), 1)}
        run.write_state({**run.read_state(), "summary": summary, "timers": s.timers.seconds,
                         "wall_s": summary["wall_s"]})
        write_report(run, _title(cfg), prefs.store if prefs is not None else None)
        if cfg.video_steps > 0:
            _video(s)
        return TrainResult(run.path, wrapper.env_step, s.labels(), final, round(s.elapsed(), 1))


def _title(cfg: TrainConfig) -> str:
    return f"{cfg.env}: {cfg.reward} reward"


def _video(s: Session) -> None:
    try:
        record_video(s.agent, s.outer, s.cfg.env_id, s.run.path / "agent.mp4", s.cfg.video_steps, seed=s.cfg.seed)
    except Exception as e:  # noqa: BLE001 - the run is saved; a machine that cannot render only loses the video
        log.warning("no agent.mp4: rendering failed (%s). On a headless machine set MUJOCO_GL=egl "
                    "or osmesa (apt-get install libosmesa6)", e)
