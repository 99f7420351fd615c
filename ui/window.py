"""The window as a process beside a training run (`label_window`), and the command's entry (`run_label_app`)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefrl.ui.app import LabelApp, Mode

log = logging.getLogger(__name__)


def run_label_app(run_dir: Path, labeler: str | None, mode: Mode, ahead: int, asks_on_quit: bool = False,
                  k: int = 4, store_url: str | None = None) -> int:
    app = LabelApp(run_dir, labeler, mode, ahead, asks_on_quit=asks_on_quit, k=k, store_url=store_url)
    app.run()
    return app.answered


@contextmanager
def label_window(run_dir: Path, labeler: str | None) -> Iterator[mp.process.BaseProcess]:
    """The comparison window on a training run, in its own process for as long as the run lasts: closed when the
    run ends or fails, and it closes itself if the training process is killed. Quitting it asks whether the run
    goes on without the person or stops."""
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_window_process, args=(Path(run_dir), labeler, os.getpid()), name="prefrl-window")
    proc.start()
    try:
        yield proc
    finally:
        if proc.is_alive():
            log.info("the run has ended: closing the labelling window (label on with `prefrl label %s`)", run_dir)
            proc.terminate()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()


def _window_process(run_dir: Path, labeler: str | None, trainer_pid: int) -> None:
    def watch() -> None:  # the window never outlives the training process that opened it
        while os.getppid() == trainer_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    run_label_app(run_dir, labeler, "compare", ahead=3, asks_on_quit=True)
