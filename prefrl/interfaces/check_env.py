"""`prefrl check-env ENV`: check an environment and say what prefrl will do with it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

from prefrl.config import RewardModelConfig
from prefrl.core.reward.factory import make_reward_model
from prefrl.errors import PrefrlError
from prefrl.gym import atari
from prefrl.gym.environments import env_has_true_reward, episode_limit, make_env, score_functions
from prefrl.gym.render import render_env
from prefrl.gym.states import can_restore, capture, restore
from prefrl.gym.vec import make_vec_env


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


def _atari_frames_match(spec: str, renv: gym.Env, steps: int = 60) -> float:
    """Act at random in the agent's view, re-render the steps from their states, compare with what it saw."""
    venv = make_vec_env(spec, 1, seed=1)
    obs = [np.asarray(venv.reset())[0]]
    states, acts = [], []
    rng = np.random.default_rng(0)
    for _ in range(steps):
        a = rng.integers(venv.action_space.n, size=1)  # type: ignore[attr-defined]
        o, _, done, infos = venv.step(a)
        if done[0]:
            break
        obs.append(np.asarray(o)[0])
        states.append(infos[0]["prefrl_state"])
        acts.append(a[0])
    venv.close()
    frames = atari.render_clip(renv, np.stack(states), np.stack(acts))
    return atari.newest_frames_match(renv, frames, np.stack(obs))


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
    game = atari.is_atari(env)
    if game:
        venv = make_vec_env(spec, 1, seed=0)
        obs = venv.observation_space
        venv.close()
        report.add(True, f"Atari game: the agent sees SB3's AtariWrapper + 4 stacked frames {_space(obs)}, "
                         "CnnPolicy (on CUDA when there is one)")
    try:
        kind = type(make_reward_model(obs, act, RewardModelConfig(members=1)).body).__name__
        report.add(True, f"observation {_space(obs)}: reward model = " + (
            "ensemble of CNNs over (image, action one-hot), members in one grouped call"
            if kind == "CnnBody" else "ensemble of MLPs over (observation, action)"))
    except (PrefrlError, AssertionError) as e:
        report.add(False, f"observation {_space(obs)}: {e}")
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
        if report.restorable and game:
            share = _atari_frames_match(spec, renv)
            report.add(share == 1.0, f"ALE state save/restore: clips are rendered on demand by re-running each step "
                                     f"from its recorded emulator state; {share:.0%} of frames match the agent's view")
        elif report.restorable:
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
