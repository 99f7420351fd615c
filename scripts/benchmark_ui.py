"""Measures what a person labelling feels: answer -> next pair on screen, and render throughput.

    python scripts/benchmark_ui.py [--env HalfCheetah-v5] [--pairs 30]

Records real clips of the env (states only), renders them the way the render worker does (frames/s),
then answers `--pairs` queries in the comparison window with a full queue (SDL dummy video driver) and
reports the latency from each committed answer to the next pair drawn. Writes docs/ui.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from prefrl.errors import exit_status

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pygame  # noqa: E402

from prefrl.core.store import PreferenceStore  # noqa: E402
from prefrl.gym.render import ClipRenderer, save_clip  # noqa: E402
from prefrl.gym.vec import make_vec_env  # noqa: E402
from prefrl.gym.wrapper import ClipRecorder, RewardVecEnvWrapper  # noqa: E402
from prefrl.interfaces.benchmark import machine  # noqa: E402
from prefrl.ui.app import LabelApp  # noqa: E402


@dataclass(frozen=True)
class Args:
    env: str = "HalfCheetah-v5"
    """Env whose clips are recorded and rendered."""
    pairs: int = 30
    """Queries answered in the window."""
    clip_length: int = 25
    """Steps per clip."""
    watch: float = 0.5
    """Seconds the 'person' watches each pair before answering."""
    docs: Path = Path("docs")
    """Folder that receives ui.md."""


def main(args: Args) -> None:
    run = Path(tempfile.mkdtemp())
    venv = make_vec_env(args.env, 2, seed=0)
    rec = ClipRecorder(2, args.clip_length)
    w = RewardVecEnvWrapper(venv, None, rec)
    w.reset()
    while len(rec.clips) < 2 * args.pairs + 2:
        w.step(np.stack([w.action_space.sample() for _ in range(2)]))
    store = PreferenceStore(run / "prefs.sqlite", env_id=args.env)
    (run / "clips").mkdir()
    renderer = ClipRenderer(args.env)
    clips = list(rec.clips)[: 2 * args.pairs]
    t0, n_frames, t_npy = time.perf_counter(), 0, 0.0
    for k in range(args.pairs):
        ids = [store.add_clip(c) for c in clips[2 * k: 2 * k + 2]]
        for cid, clip in zip(ids, clips[2 * k: 2 * k + 2]):
            frames = renderer.frames(clip)
            n_frames += len(frames)
            t = time.perf_counter()
            save_clip(run / "clips", cid, frames, renderer.fps)
            t_npy += time.perf_counter() - t
        store.add_query(ids[0], ids[1], env_step=0)
    total = time.perf_counter() - t0
    render_fps = n_frames / (total - t_npy)
    worker_fps = n_frames / total
    h, wd = renderer.frames(clips[0])[0].shape[:2]

    app = LabelApp(run, labeler="bench", ahead=3, size=(1180, 680), render_worker=False)
    try:
        for _ in range(args.pairs - 1):
            deadline = time.time() + 10
            while app.current is None and time.time() < deadline:
                app.step()
            watch_until = time.time() + args.watch
            while time.time() < watch_until:  # a person watches the clips before answering
                app.step()
                app.clock.tick(60)
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT, unicode="", mod=0, scancode=0))
            app.step()
        while app.current is None:
            app.step()
    finally:
        app.close()
    lat = np.array(app.latencies) * 1000
    text = (f"## Labelling window: latency and render throughput\n\n"
            f"Machine: {machine()}. Command: `python scripts/benchmark_ui.py --env {args.env} "
            f"--pairs {args.pairs}` (each pair watched {args.watch} s before the answer).\n\n"
            f"| measure | value |\n|---|---|\n"
            f"| answer -> next pair on screen, queue full (median / p95 / max of {len(lat)}) | "
            f"{np.median(lat):.0f} / {np.percentile(lat, 95):.0f} / {lat.max():.0f} ms |\n"
            f"| render throughput, {args.env} {wd}x{h} (restore state + render) | {render_fps:.1f} frames/s |\n"
            f"| render worker throughput incl. saving .npy + .mp4 | {worker_fps:.1f} frames/s "
            f"({worker_fps / (2 * args.clip_length):.2f} pairs/s) |\n")
    args.docs.mkdir(exist_ok=True)
    (args.docs / "ui.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args, description=__doc__))))
