"""Atari (ALE) games: the agent's view of them, and their state for render on demand.

The agent and the reward model see what stable-baselines3 feeds an Atari agent: `AtariWrapper` (no-op starts,
fire on reset, a life lost ends the episode, 4 frames per step max-pooled over the last two, 84x84 grey),
then `VecFrameStack` of 4 and `VecTransposeImage`: observations (4, 84, 84) uint8. Rewards are not clipped,
so synthetic teachers judge the game's own score (the learned reward replaces it for the agent anyway).

Sticky actions are off (``repeat_action_probability=0``), as in SB3's and RL-zoo's Atari setup
(NoFrameskip-v4) and the paper: ALE's saved state does not hold the action a sticky frame would repeat, so
with them on, a clip's first step could not be re-run exactly.

A clip is drawn for a person from the emulator state recorded before each step (ALE's cloneState, with its
random generator): restore it, repeat the step's action for the frame skip, and keep the max of the last
two RGB frames, as `MaxAndSkipEnv` does. Restoring a state does not restore the screen, so frame t shows
the screen *after* step t: the full-colour version of the newest frame in the agent's next observation.
`newest_frames_match` checks exactly that (measured: every step that does not end an episode matches).
"""

from __future__ import annotations

import weakref
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.atari_wrappers import AtariWrapper, WarpFrame
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecTransposeImage

from prefrl.gym.environments import make_env

FRAME_SKIP = 4
"""Emulator frames per agent step (SB3's and the paper's)."""
FRAME_STACK = 4
"""Agent steps of frames in one observation."""
EMULATOR_FPS = 60

_state_width: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def is_atari(env: gym.Env) -> bool:
    """Whether the env is an ALE game (checked by class, so ale_py is imported only where it is used)."""
    return type(env.unwrapped).__module__.startswith("ale_py")


def is_atari_id(spec: str) -> bool:
    return spec.startswith("ALE/")


def make_base(spec: str, render_mode: str | None = None) -> gym.Env:
    """The game with one emulator frame per step and no sticky actions for registered ids, so `AtariWrapper`
    does the skipping and a recorded state replays exactly."""
    kwargs = {"frameskip": 1, "repeat_action_probability": 0.0} if is_atari_id(spec) else {}
    return make_env(spec, render_mode=render_mode, **kwargs)


def frame_skip(env: gym.Env) -> int:
    """Frames the wrapper repeats an action for: 4, or 1 when the game already skips (a factory's own env)."""
    return FRAME_SKIP if int(getattr(env.unwrapped, "_frameskip", 1)) == 1 else 1


def playback_fps(env: gym.Env) -> float:
    """Agent steps per second of game time: clips play at the game's own speed."""
    return EMULATOR_FPS / (frame_skip(env) * int(getattr(env.unwrapped, "_frameskip", 1)))


def preprocess(env: gym.Env) -> gym.Env:
    """SB3's Atari preprocessing of one game (rewards left unclipped: see the module docstring)."""
    return AtariWrapper(env, frame_skip=frame_skip(env), terminal_on_life_loss=True, clip_reward=False)


def stack_frames(venv: VecEnv) -> VecEnv:
    """The last 4 preprocessed frames, channel-first, as SB3's CnnPolicy takes them: (4, 84, 84) uint8."""
    return VecTransposeImage(VecFrameStack(venv, FRAME_STACK))


def capture_state(env: gym.Env) -> np.ndarray:
    """The emulator state, RNG included, as a uint8 row: 4 bytes of length, the serialised state, zero padding.

    Serialised states differ by a few bytes from step to step, so each env pads to one width (its first
    state's size plus a quarter) and a clip's states stack into one (T, S) array.
    """
    u: Any = env.unwrapped
    raw = bytes(u.clone_state(include_rng=True).serialize())
    width = _state_width.setdefault(u, 4 + (len(raw) * 5 // 4 + 1023) // 1024 * 1024)
    if 4 + len(raw) > width:
        raise RuntimeError(f"ALE state of {len(raw)} bytes does not fit the {width}-byte row chosen for this game")
    out = np.zeros(width, dtype=np.uint8)
    out[:4] = np.frombuffer(np.uint32(len(raw)).tobytes(), dtype=np.uint8)
    out[4:4 + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


def restore_state(env: gym.Env, state: np.ndarray) -> None:
    import ale_py

    row = np.asarray(state, dtype=np.uint8)
    n = int(row[:4].view(np.uint32)[0])
    env.unwrapped.restore_state(ale_py.ALEState(row[4:4 + n].tobytes()))  # type: ignore[attr-defined]


def render_clip(env: gym.Env, states: np.ndarray, acts: np.ndarray) -> np.ndarray:
    """(T, S) recorded states and (T,) actions -> (T, 210, 160, 3) RGB frames; frame t is the screen after
    step t, max-pooled over its last two emulator frames. `env`: the game in rgb_array mode (`make_base`)."""
    u: Any = env.unwrapped
    skip = frame_skip(env)
    frames = []
    for state, action in zip(states, acts):
        restore_state(env, state)
        last_two: list[np.ndarray] = []
        for _ in range(skip):
            _, _, terminated, truncated, _ = u.step(int(action))
            last_two = (last_two + [np.asarray(u.render(), dtype=np.uint8)])[-2:]
            if terminated or truncated:
                break
        frames.append(np.max(np.stack(last_two), axis=0))
    return np.stack(frames)


def newest_frames_match(env: gym.Env, frames: np.ndarray, obs: np.ndarray) -> float:
    """Share of steps whose rendered frame, grey-scaled and resized as the agent's were, equals the newest
    frame of the agent's next observation exactly. frames (T, H, W, 3); obs (T, 4, 84, 84) channel-first."""
    warp = WarpFrame(env)
    same = [np.array_equal(warp.observation(frames[t])[..., 0], obs[t + 1][-1]) for t in range(len(frames) - 1)]
    return float(np.mean(same)) if same else float("nan")
