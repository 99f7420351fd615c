"""Drive the real comparison window under Xvfb with real key presses (xdotool) and take screenshots.

    python scripts/ui_under_xvfb.py [--docs docs]
    python scripts/ui_under_xvfb.py --env ALE/Pong-v5 --steps 2048   # docs/ui-compare-pong.png only

Needs Debian's xvfb, xdotool, imagemagick and x11-utils (it re-runs itself under xvfb-run). It makes a
short HalfCheetah run with --teacher human --no-window, opens `prefrl label` on it, presses keys, checks
every answer reached the store, and saves docs/ui-compare.png, docs/ui-rate.png and docs/ui-waiting.png.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from prefrl.core.data import Answer
from prefrl.core.store import PreferenceStore


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def window_id(timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in sh("xwininfo", "-root", "-tree").splitlines():
            if '"prefrl:' in line:
                return line.split()[0]
        time.sleep(0.5)
    raise RuntimeError("the prefrl window did not appear")


def wait_rendered(run: Path, n_queries: int, timeout: float = 300) -> None:
    """Until the render worker has drawn the clips of the first `n_queries` open queries."""
    store = PreferenceStore(run / "prefs.sqlite")
    deadline = time.time() + timeout
    while time.time() < deadline:
        ids = [cid for q in store.pending_queries(limit=n_queries) for cid in (q.left_id, q.right_id)]
        if all((run / "clips" / f"{cid}.npy").exists() for cid in ids):
            time.sleep(1.0)  # loaded into the window
            return
        time.sleep(0.5)
    raise RuntimeError("clips were not rendered in time")


def open_window(run: Path, *extra: str, rendered: int = 0) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "prefrl.interfaces.cli", "label", str(run), *extra])
    try:
        sh("xdotool", "windowfocus", "--sync", window_id())
        wait_rendered(run, rendered)
    except BaseException:
        proc.kill()
        raise
    return proc


def press(*keys: str, pause: float = 0.8) -> None:
    for k in keys:
        sh("xdotool", "key", k)
        time.sleep(pause)


@dataclass(frozen=True)
class Args:
    docs: Path = Path("docs")
    """Folder that receives the screenshots."""
    env: str = "HalfCheetah-v5"
    """Env of the run labelled; another than HalfCheetah-v5 takes only the comparison screenshot."""
    steps: int = 6000
    """Env steps of the short run whose clips are labelled."""


def main(args: Args) -> None:
    if not os.environ.get("DISPLAY"):
        os.execvp("xvfb-run", ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24", sys.executable, *sys.argv])
    os.environ.pop("SDL_VIDEODRIVER", None)
    args.docs.mkdir(exist_ok=True)
    run = Path(tempfile.mkdtemp()) / "run"
    subprocess.run([sys.executable, "-m", "prefrl.interfaces.cli", "train", "--env", args.env, "--teacher", "human",
                    "--no-window", "--steps", str(args.steps), "--labels", "60", "--out", str(run), "--video-steps",
                    "0", "--eval-episodes", "1", "--no-progress"], check=True)
    store = PreferenceStore(run / "prefs.sqlite")
    other_env = args.env != "HalfCheetah-v5"
    suffix = "-" + args.env.split("/")[-1].split("-")[0].lower() if other_env else ""

    proc = open_window(run, "--labeler", "xdotool", rendered=5)
    try:
        press("Left", "Right", "equal", "Up", "BackSpace")
        sh("import", "-window", "root", str(args.docs / f"ui-compare{suffix}.png"))
        answers = [lab.answer for lab in store.labels()]
        assert answers == [Answer.LEFT, Answer.RIGHT, Answer.EQUAL], answers
        press("q")
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    if other_env:
        print(f"ok: real key presses became labels {[a.value for a in answers]} on {args.env}; "
              f"screenshot {args.docs}/ui-compare{suffix}.png")
        return

    proc = open_window(run, "--labeler", "rater", "--mode", "rate", rendered=2)
    try:
        press("4", "2")
        sh("import", "-window", "root", str(args.docs / "ui-rate.png"))
        press("q")
        proc.wait(timeout=20)
    finally:
        proc.kill()
    assert [v for _, v, who in store.ratings() if who == "rater"] == [4.0, 2.0]

    waiting = Path(tempfile.mkdtemp()) / "empty"
    waiting.mkdir()
    shutil.copy(run / "config.json", waiting / "config.json")
    PreferenceStore(waiting / "prefs.sqlite", env_id="HalfCheetah-v5")
    proc = open_window(waiting)
    try:
        sh("import", "-window", "root", str(args.docs / "ui-waiting.png"))
        press("Escape")
        proc.wait(timeout=20)
    finally:
        proc.kill()
    print(f"ok: real key presses became labels {[a.value for a in answers]} and ratings [4, 2]; "
          f"screenshots in {args.docs}/ui-*.png")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
