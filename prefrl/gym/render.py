"""Drawing clips for people: restore each recorded state and render, only for clips a person will see."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.core.data import Clip
from prefrl.core.store import open_store
from prefrl.errors import PrefrlError
from prefrl.gym import atari
from prefrl.gym.environments import is_mujoco, make_env
from prefrl.gym.states import restore

log = logging.getLogger(__name__)


def render_env(spec: str, width: int = 256, height: int = 192) -> gym.Env:
    """The env in rgb_array mode, reset, at a small frame size where the env takes one (MuJoCo does)."""
    probe = make_env(spec)
    game = atari.is_atari(probe)
    size = {"width": width, "height": height} if is_mujoco(probe) else {}
    probe.close()
    env = atari.make_base(spec, "rgb_array") if game else make_env(spec, render_mode="rgb_array", **size)
    if env.render_mode != "rgb_array":
        raise PrefrlError(f"env '{spec}' was not made in render_mode 'rgb_array', so a person cannot see its clips: "
                          "let its constructor or factory take render_mode and honour 'rgb_array'")
    if is_mujoco(env):
        env = FollowCamera(env)
    env.reset(seed=0)
    return env


class FollowCamera(gym.Wrapper):
    """Keeps a MuJoCo agent in the picture: each frame looks at the body the env's camera config tracks
    (`trackbodyid`, else the root body). Gymnasium's renderer uses a free camera that stays where it was put,
    so a Hopper that flips backwards or a HalfCheetah that runs would leave the frame. MuJoCo's own tracking
    camera moves by how far the body moved since the last frame, so it lags when clips are drawn from restored
    states; setting the look-at point each frame does not."""

    def render(self):  # type: ignore[no-untyped-def]
        u: Any = self.env.unwrapped
        renderer = u.mujoco_renderer
        if renderer.viewer is None:  # the renderer makes its viewer on the first frame
            self.env.render()
        body = (renderer.default_cam_config or {}).get("trackbodyid", 1)
        renderer.viewer.cam.lookat[:2] = u.data.xpos[body][:2]
        return self.env.render()


def playback_fps(env: gym.Env) -> float:
    """Frames per second that play a clip at the env's own speed (one frame per agent step)."""
    return atari.playback_fps(env) if atari.is_atari(env) else float(env.metadata.get("render_fps") or 30)


SYNTHETIC_CLIP_STEPS = 25
"""Clip length for synthetic teachers: the label-efficiency benchmark's (docs/benchmarks.md)."""


def clip_steps(env: gym.Env, for_person: bool, seconds: float) -> int:
    """Agent steps in one clip: 25 for synthetic teachers; for a person, `seconds` of the env's own time (one
    agent step lasts 1/playback_fps), except Atari, whose 25 steps (1.7 s) are kept."""
    if not for_person or atari.is_atari(env):
        return SYNTHETIC_CLIP_STEPS
    return max(2, round(seconds * playback_fps(env)))


class ClipRenderer:
    """Frames of a clip: its recorded frames, or its recorded states restored and rendered one by one."""

    def __init__(self, spec: str, width: int = 256, height: int = 192) -> None:
        self.env = render_env(spec, width, height)
        self.fps = playback_fps(self.env)

    def frames(self, clip: Clip) -> np.ndarray:
        if clip.frames is not None:
            return clip.frames
        if clip.states is None:
            raise PrefrlError("this clip has neither states nor frames to draw it from: record it with a run whose "
                              "env can save its state, or with --teacher human (which records frames)")
        if atari.is_atari(self.env):  # the screen is not part of the state: re-run each step from its state
            return atari.render_clip(self.env, clip.states, clip.acts)
        out = []
        for state in clip.states:
            restore(self.env, state)
            out.append(np.asarray(self.env.render(), dtype=np.uint8))
        return np.stack(out)

    def close(self) -> None:
        self.env.close()


def clip_paths(clips_dir: Path, clip_id: int) -> tuple[Path, Path]:
    """(frames .npy, video .mp4) of a rendered clip."""
    return clips_dir / f"{clip_id}.npy", clips_dir / f"{clip_id}.mp4"


def write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """frames (T, H, W, 3) uint8 -> an H.264 mp4 that browsers play (imageio's bundled ffmpeg).

    yuv420p is the pixel format every browser decodes (ffmpeg would otherwise keep 4:4:4 for RGB input), which
    needs even sides, so odd frames get one black row or column; `+faststart` puts the index first, so a page
    can start playing before the whole file has arrived. Written to a temporary name and moved into place, so
    a reader never sees half a file.
    """
    import imageio.v2 as imageio

    frames = np.asarray(frames, dtype=np.uint8)
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    imageio.mimwrite(tmp, list(frames), fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=1,
                     ffmpeg_params=["-movflags", "+faststart"], ffmpeg_log_level="error")
    os.replace(tmp, path)


def save_clip(clips_dir: Path, clip_id: int, frames: np.ndarray, fps: float) -> None:
    """Write an mp4 (for the web page, people and exports), then the frames (for the window), each atomically:
    a clip whose .npy exists has its .mp4 too."""
    npy, mp4 = clip_paths(clips_dir, clip_id)
    write_mp4(mp4, frames, fps)
    tmp = npy.with_suffix(".tmp.npy")
    np.save(tmp, frames)
    os.replace(tmp, npy)


def prefetch(run_dir: Path, env_spec: str, ahead: int, stop: object, poll_s: float = 0.05,
             store_url: str | None = None) -> None:
    """Render worker: keep the clips of the first `ahead` open queries rendered, until `stop` is set.

    Runs in its own process beside the UI, so drawing never blocks the window; it ends when the process
    that started it does.
    """
    parent = os.getppid()
    store = open_store(run_dir, store_url)  # the clips' states come from the store; videos go to run_dir/clips here
    clips_dir = run_dir / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    renderer = ClipRenderer(env_spec)
    while not stop.is_set() and os.getppid() == parent:  # type: ignore[attr-defined]
        todo = [cid for q in store.pending_queries(limit=ahead) for cid in (q.left_id, q.right_id)
                if not clip_paths(clips_dir, cid)[0].exists()]
        if not todo:
            time.sleep(poll_s)
            continue
        for cid in dict.fromkeys(todo):
            t = time.perf_counter()
            frames = renderer.frames(store.clip(cid))
            save_clip(clips_dir, cid, frames, renderer.fps)
            log.debug("rendered clip %d: %d frames in %.2fs", cid, len(frames), time.perf_counter() - t)
    renderer.close()
