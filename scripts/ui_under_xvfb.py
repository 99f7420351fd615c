"""Drive the real comparison window under Xvfb with real key presses (xdotool) and take screenshots.

    python scripts/ui_under_xvfb.py [--docs docs]
    python scripts/ui_under_xvfb.py --env ALE/Pong-v5 --steps 2048   # docs/ui-compare-pong.png only
    python scripts/ui_under_xvfb.py --mode train                     # a run that waits for the person

Needs Debian's xvfb, xdotool, imagemagick and x11-utils (it re-runs itself under xvfb-run).

--mode label (default): makes a short HalfCheetah run with --teacher human --no-window, opens `prefrl label` on
it, presses keys, checks every answer reached the store, and saves docs/ui-compare.png, docs/ui-rate.png and
docs/ui-waiting.png.

--mode train: runs `prefrl train --env prefrl/PointReach-v0 --teacher human --steps 8192 --labels 12` with its
window, answers every pair with <- / -> (xdotool moves the pointer onto the window and presses the key: under
Xvfb with no window manager, keys go to the window under the pointer), opens the quit dialog once and goes back,
and checks the run ends having trained on exactly the labels given (state.json summary, metrics.csv). Saves
docs/ui-waiting-labels.png and docs/ui-quit.png; then builds a store of text clips by hand and saves the text view
(docs/ui-text.png) and the ranking view (docs/ui-rank.png).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import tyro

from prefrl.core.data import Answer, Clip
from prefrl.core.labels import PERSON_KEY, WAITING_KEY
from prefrl.core.store import PreferenceStore
from prefrl.errors import exit_status


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


def centre_of(window: str) -> tuple[int, int]:
    info = dict(line.strip().split(":", 1) for line in sh("xwininfo", "-id", window).splitlines() if ":" in line)
    x, y = int(info["Absolute upper-left X"]), int(info["Absolute upper-left Y"])
    return x + int(info["Width"]) // 2, y + int(info["Height"]) // 2


def press_at(point: tuple[int, int], key: str) -> None:
    """A key press for the window under the pointer (no window manager gives SDL the focus)."""
    sh("xdotool", "mousemove", str(point[0]), str(point[1]), "key", key)


def until(condition, timeout: float, poll: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return bool(condition())


@dataclass(frozen=True)
class Args:
    docs: Path = Path("docs")
    """Folder that receives the screenshots."""
    env: str = "HalfCheetah-v5"
    """Env of the run labelled; another than HalfCheetah-v5 takes only the comparison screenshot."""
    steps: int = 6000
    """Env steps of the short run whose clips are labelled."""
    mode: Literal["label", "train"] = "label"
    """label: `prefrl label` on a finished run; train: the window of a `prefrl train --teacher human` run, plus the
    text and ranking views."""


def main(args: Args) -> None:
    if not os.environ.get("DISPLAY"):
        os.execvp("xvfb-run", ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24", sys.executable, *sys.argv])
    os.environ.pop("SDL_VIDEODRIVER", None)
    args.docs.mkdir(exist_ok=True)
    if args.mode == "train":
        train_with_window(args.docs)
        text_views(args.docs)
        return
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


def train_with_window(docs: Path, labels: int = 12) -> None:
    """A PointReach run with its window: answer every pair by key, visit the quit dialog, check what it trained on."""
    run = Path(tempfile.mkdtemp()) / "run"
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "prefrl.interfaces.cli", "train", "--env", "prefrl/PointReach-v0",
                             "--teacher", "human", "--steps", "8192", "--labels", str(labels), "--out", str(run),
                             "--video-steps", "0", "--eval-episodes", "2", "--no-progress", "--labeler", "xdotool"])
    try:
        point = centre_of(window_id(timeout=120))
        store = PreferenceStore(run / "prefs.sqlite")
        pressed = answered = 0
        shots: dict[str, bool] = {}
        while proc.poll() is None and time.time() - t0 < 480:
            pending = store.pending_queries(limit=1)
            if not pending or not all((run / "clips" / f"{c}.npy").exists()
                                      for c in (pending[0].left_id, pending[0].right_id)):
                time.sleep(0.2)
                continue
            time.sleep(0.6)  # loaded and on screen
            if store.meta(WAITING_KEY) and "waiting" not in shots:
                sh("import", "-window", "root", str(docs / "ui-waiting-labels.png"))
                shots["waiting"] = True
            if answered == labels // 2 and "quit" not in shots:
                press_at(point, "q")
                time.sleep(0.8)
                sh("import", "-window", "root", str(docs / "ui-quit.png"))
                press_at(point, "Escape")  # keep labelling
                time.sleep(0.5)
                assert not store.meta(PERSON_KEY), "Keep labelling wrote a choice"
                shots["quit"] = True
            before = store.count_labels()
            press_at(point, "Left" if pressed % 2 == 0 else "Right")
            pressed += 1
            if until(lambda: store.count_labels() > before, 3.0):  # noqa: B023 - checked before the next press
                answered += 1
        assert proc.wait(timeout=300) == 0, "the run failed"
    finally:
        if proc.poll() is None:
            proc.kill()
    summary = json.loads((run / "state.json").read_text())["summary"]
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    accuracy = max(float(r["rm_val_accuracy"]) for r in rows if r["rm_val_accuracy"] not in ("", "nan"))
    answers = [lab.answer.value for lab in PreferenceStore(run / "prefs.sqlite").labels()]
    assert summary["labels"] == answered == labels, (summary, answered)
    assert accuracy > 0, rows
    assert set(shots) == {"waiting", "quit"}, shots
    print(f"ok (train): {pressed} key presses, {answered} answered ({answers.count('left')} left, "
          f"{answers.count('right')} right); the run trained on summary labels = {summary['labels']}, "
          f"rm val accuracy up to {accuracy:.2f}, env steps {summary['env_steps']}, final true return "
          f"{summary['final_true_return']:.1f}, {time.time() - t0:.0f}s; screenshots {docs}/ui-waiting-labels.png, "
          f"{docs}/ui-quit.png")


def _text_clip(prompt: str, completion: str) -> Clip:
    return Clip(obs=np.zeros((1, 0), dtype=np.int64), acts=np.zeros((1, 0), dtype=np.float32),
                true_rewards=np.array([np.nan]), prompt=prompt, completion=completion)


def text_views(docs: Path) -> None:
    """A hand-made store of text clips: the text view (a label by key) and the ranking view (a ranking of 4)."""
    run = Path(tempfile.mkdtemp()) / "text"
    run.mkdir()
    store = PreferenceStore(run / "prefs.sqlite", env_id="text")
    prompt = "Explain to a new engineer, in two or three sentences, why we learn a reward model from comparisons."
    completions = [
        "People find it hard to write down a number for how good a behaviour is, but easy to say which of two is "
        "better. So we ask for comparisons and fit a reward model that agrees with them; the policy is then "
        "trained on that model's reward.",
        "Comparisons are cheaper.",
        "Because writing a reward function by hand invites reward hacking: the agent finds what the function "
        "measures rather than what we meant. Comparisons from people keep the target close to what we mean, and "
        "the learned reward model generalises them to behaviour nobody has labelled.",
        "We learn a reward model because reinforcement learning needs a reward, and the reward is learned, which "
        "is why we learn it from comparisons, because comparisons are what we learn the reward model from.",
    ]
    ids = [store.add_clip(_text_clip(prompt, c)) for c in completions]
    store.add_label(store.add_query(ids[0], ids[3], env_step=0, origin="imported"), Answer.LEFT, "import")
    store.add_label(store.add_query(ids[2], ids[1], env_step=0, origin="imported"), Answer.LEFT, "import")
    store.add_query(ids[0], ids[1], env_step=0)
    store.add_query(ids[2], ids[3], env_step=0)

    proc = open_window(run, "--labeler", "xdotool")
    try:
        time.sleep(1.0)
        sh("import", "-window", "root", str(docs / "ui-text.png"))
        press("Left")
        press("q")
        proc.wait(timeout=20)
    finally:
        proc.kill()
    text_answers = [(lab.query_id, lab.answer.value) for lab in store.labels() if lab.labeler == "xdotool"]
    assert text_answers == [(3, "left")], text_answers
    for lab in store.labels():  # back to two open queries for the ranking
        if lab.labeler == "xdotool":
            store.undo_last_label("xdotool")

    proc = open_window(run, "--labeler", "xdotool", "--mode", "rank", "--k", "4")
    try:
        time.sleep(1.0)
        press("3")
        sh("import", "-window", "root", str(docs / "ui-rank.png"))
        press("1", "2")  # 3 > 1 > 2 > 4: the last is implied
        press("q")
        proc.wait(timeout=20)
    finally:
        proc.kill()
    order = [ids[2], ids[0], ids[1], ids[3]]
    won = {(q.left_id, q.right_id) if lab.answer is Answer.LEFT else (q.right_id, q.left_id)
           for q, lab in store.labelled_pairs() if lab.labeler == "xdotool"}
    assert won == {(order[i], order[j]) for i in range(4) for j in range(i + 1, 4)}, won
    print(f"ok (text): a text pair labelled by key without a render worker; a ranking of 4 by keys became "
          f"{len(won)} comparisons; screenshots {docs}/ui-text.png, {docs}/ui-rank.png")


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args, description=__doc__))))
