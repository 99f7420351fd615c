"""`prefrl check-env ENV`: check an environment and say what prefrl will do with it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

from prefrl.environments import env_has_true_reward, episode_limit, make_env, score_functions
from prefrl.errors import PrefrlError
from prefrl.render import render_env
from prefrl.states import can_restore, capture, restore


@dataclass
class EnvReport:
    """What was found, line by line, and whether the env can be trained at all."""

    env: str
    lines: list[str] = field(default_factory=list)
    usable: bool = True
    human_ok: bool = False
    restorable: bool = False

    def add(self, ok: bool | None, text: str) -> None:
        mark = {True: "ok  ", False: "FAIL", None: "note"}[ok]
        self.lines.append(f"[{mark}] {text}")

    def __str__(self) -> str:
        verdict = "ready for prefrl" if self.usable else "NOT usable as it is: see FAIL lines"
        return "\n".join([f"prefrl check-env {self.env}", *self.lines, f"=> {verdict}"])


def _space(space: gym.Space) -> str:
    return f"{type(space).__name__}{tuple(space.shape) if space.shape else ''}"


def check_environment(spec: str, teacher_score: str | None = None) -> EnvReport:
    report = EnvReport(spec)
    env = make_env(spec)  # unknown ids and bad factories raise their own clear errors
    try:
        check_env(env.unwrapped, skip_render_check=True)
        report.add(True, "gymnasium API checker (gymnasium.utils.env_checker.check_env) passed")
    except Exception as e:  # noqa: BLE001 - the checker raises many kinds; each is a finding to report
        report.add(False, f"gymnasium API checker: {type(e).__name__}: {e}")
        report.usable = False
    obs, act = env.observation_space, env.action_space
    if isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1:
        report.add(True, f"observation {_space(obs)}: reward model = ensemble of MLPs over (observation, action)")
    elif isinstance(obs, gym.spaces.Box) and len(obs.shape) == 3:
        report.add(False, f"observation {_space(obs)} is an image: needs the CNN reward model, not in this version")
        report.usable = False
    else:
        report.add(False, f"observation {_space(obs)}: flatten it to a vector (gymnasium FlattenObservation)")
        report.usable = False
    if isinstance(act, (gym.spaces.Box, gym.spaces.Discrete)):
        report.add(True, f"action {_space(act)}" + (" (one-hot in the reward model)" if isinstance(
            act, gym.spaces.Discrete) else ""))
    else:
        report.add(False, f"action {_space(act)}: use Box or Discrete actions")
        report.usable = False
    limit = episode_limit(env)
    report.add(True if limit else None, f"episode limit: {limit} steps" if limit else
               "no time limit (register with max_episode_steps, or wrap in gymnasium TimeLimit)")

    step_score, _ = score_functions(env, teacher_score)
    if step_score is not None:
        report.add(True, f"synthetic teachers judge clips by the scorer ({teacher_score or 'named by the env'})")
    elif env_has_true_reward(env):
        report.add(True, "synthetic teachers judge clips by the env's reward")
    else:
        report.add(None, "no reward for the task: synthetic teachers need --teacher-score module:function")
    env.close()

    try:
        renv = render_env(spec)
        t = time.perf_counter()
        frame = np.asarray(renv.render())
        ms = (time.perf_counter() - t) * 1000
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"render() returned shape {frame.shape}, not (H, W, 3)")
        report.human_ok = True
        report.add(True, f"rgb_array rendering: {frame.shape[1]}x{frame.shape[0]} frames, {ms:.0f} ms for one")
    except (PrefrlError, ValueError, TypeError, AttributeError, gym.error.Error) as e:
        report.add(False, f"rgb_array rendering failed ({e}): a person cannot see clips (--teacher human); "
                          "synthetic teachers still work")
        renv = None
    if renv is not None:
        report.restorable = can_restore(renv)
        if report.restorable:
            renv.reset(seed=1)
            state = capture(renv)
            before = np.asarray(renv.render())
            renv.step(renv.action_space.sample())
            restore(renv, state)
            same = np.array_equal(np.asarray(renv.render()), before)
            report.add(same, "state save/restore: clips are rendered on demand from recorded states" if same else
                       "state restore does not reproduce the frame: frames would be wrong")
        else:
            report.add(None, "no get_state()/set_state(): frames are recorded while acting when a person labels "
                             "(a render per step); add them to the env's class for render on demand")
        renv.close()
    return report
