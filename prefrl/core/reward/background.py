"""Fitting the reward model off the agent's path: a copy of the model trains on a thread (or in a process) while
PPO collects and learns, and the agent's model takes the new weights between rollouts.

The thread reads the labels from the store (its own connection), trains the trainer's model (the copy), renormalises
its output over a snapshot of recent clips, and leaves the weights and the trainer's state for the loop to take.
Torch releases the GIL inside its kernels, so the fit runs beside PPO on a second core; on one core the two share it.
A small MLP's fit is mostly Python between tiny kernels, though, and holds the interpreter's lock that PPO's loop
needs: `ProcessFitter` does the same work in a process of its own, which never takes the agent's lock.
A failed fit is raised, with its cause, the next time the loop looks (`swap`, `wait`).
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import torch

from prefrl.core.data import Clip
from prefrl.core.reward.model import RewardModel, normalisation_sample
from prefrl.core.reward.trainer import RewardStats, RewardTrainer
from prefrl.core.store import Store
from prefrl.core.timing import Timers


class FitFailed(RuntimeError):
    """The background fit raised; the run ends with this (its cause chained)."""


class BackgroundFitter:
    """Runs `trainer.fit` on a thread. `trainer.model` is the copy being trained; `live` is what the agent's reward
    reads, updated only by `swap()` (between rollouts) or `wait()`.

    Attributes:
        stats: what the last completed fit achieved (None before the first).
        fits: completed fits.
    """

    def __init__(self, live: RewardModel, trainer: RewardTrainer, timers: Timers | None = None) -> None:
        if trainer.model is live:
            raise ValueError("BackgroundFitter needs the trainer to train a copy of the live model")
        self.live = live
        self.trainer = trainer
        self.stats: RewardStats | None = None
        self.fits = 0
        self.timers = timers or Timers()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready: dict[str, Any] | None = None
        self._saved: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._error: BaseException | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, store: Store, clips: Sequence[Clip]) -> bool:
        """Start a fit on every label in `store` unless one is running (its successor picks up the new labels);
        returns whether one started."""
        self._raise()
        if self.busy:
            return False
        snapshot = list(clips)
        self._thread = threading.Thread(target=self._fit, args=(store, snapshot), name="prefrl-reward-fit",
                                        daemon=True)
        self._thread.start()
        return True

    def _fit(self, store: Store, clips: list[Clip]) -> None:
        try:
            with self.timers("reward_fit_background"):
                result = fit_once(self.trainer, store, clips)
            if result is not None:
                self._publish(*result)
        except BaseException as e:  # noqa: BLE001 - handed to the loop's thread, which ends the run with it
            self._error = e

    def _publish(self, weights: dict[str, Any], trainer_state: dict[str, Any], stats: RewardStats) -> None:
        """A completed fit: its weights wait for the next swap, and are what a checkpoint keeps from now on."""
        with self._lock:
            self._ready = weights
            self._saved = (weights, trainer_state)
            self.stats = stats
            self.fits += 1

    def swap(self) -> bool:
        """Give the live model the newest fitted weights, if a fit finished since the last swap."""
        self._raise()
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is None:
            return False
        with torch.no_grad():
            _load(self.live, ready)
        return True

    def wait(self) -> RewardStats | None:
        """Block until the running fit (if any) is done, then swap its weights in."""
        if self._thread is not None:
            self._thread.join()
        self.swap()
        return self.stats

    def close(self) -> None:
        """Let go of what fits (a thread ends with the run by itself)."""

    def saved_state(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(model weights, trainer state) of the last completed fit: what a checkpoint keeps, whatever runs now."""
        with self._lock:
            return self._saved

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise FitFailed(f"the reward model's background fit failed: {type(error).__name__}: {error}") from error


class ProcessFitter(BackgroundFitter):
    """`BackgroundFitter` with the fits in a process of its own (spawned at the first fit, kept for the run). The
    process holds the trainer (pickled over at its start: the model copy, optimiser, random stream, what was trained
    on), opens the store itself with `open_store`, and is sent, per fit, the steps that renormalise the output
    (`normalisation_sample`, not the clips); it sends back the weights, the trainer's state and the fit's stats. The
    parent's `trainer` is then stale: checkpoints take `saved_state()`. A fit that raises, or a process that dies,
    ends the run through `FitFailed` the next time the loop looks."""

    def __init__(self, live: RewardModel, trainer: RewardTrainer, open_store: Callable[[], Store],
                 timers: Timers | None = None, threads: int = 1) -> None:
        super().__init__(live, trainer, timers)
        self._open_store = open_store
        self._threads = threads
        self._process: Any = None
        self._conn: Connection | None = None
        self._pending = False

    @property
    def busy(self) -> bool:
        self._collect(block=False)
        return self._pending

    def submit(self, store: Store, clips: Sequence[Clip]) -> bool:
        """Start a fit on every label in the store unless one is running; `store` is the loop's (the process reads
        its own connection)."""
        busy = self.busy  # takes a result that has come, or the error a failed fit sent
        self._raise()
        if busy:
            return False
        if self._conn is None:
            context = mp.get_context("spawn")  # a fresh interpreter: never a fork of torch's or the env's threads
            self._conn, child = context.Pipe()
            self._process = context.Process(target=_serve_fits, args=(child, self.trainer, self._open_store,
                                                                      self._threads),
                                            name="prefrl-reward-fit", daemon=True)
            self._process.start()
            child.close()
        try:
            self._conn.send(normalisation_sample(clips) if clips else None)
        except (BrokenPipeError, OSError):
            self._died()
            self._raise()
        self._pending = True
        return True

    def _collect(self, block: bool) -> None:
        """Take the running fit's result if it has come (with `block`, wait for it)."""
        if not self._pending or self._conn is None:
            return
        if not block and not self._conn.poll():
            if not self._process.is_alive():
                self._died()
            return
        try:
            reply = self._conn.recv()
        except (EOFError, OSError):
            self._died()
            return
        self._pending = False
        if reply[0] == "error":
            self._error = RuntimeError(reply[1])
            return
        _, result, seconds = reply
        self.timers.add("reward_fit_background", seconds)
        if result is None:
            return
        self._publish(*result)

    def _died(self) -> None:
        self._pending = False
        self._process.join(1)
        self._error = RuntimeError(f"the fitting process ended unexpectedly (exit code {self._process.exitcode})")

    def swap(self) -> bool:
        self._collect(block=False)
        return super().swap()

    def wait(self) -> RewardStats | None:
        self._collect(block=True)
        self.swap()
        return self.stats

    def close(self) -> None:
        """Stop the process (a fit still running is dropped: the last completed one is what was checkpointed)."""
        if self._conn is None:
            return
        try:
            self._conn.send("stop")
        except (BrokenPipeError, OSError):
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._conn.close()
        self._conn = None


def fit_once(trainer: RewardTrainer, store: Store,
             clips: Sequence[Clip]) -> tuple[dict[str, Any], dict[str, Any], RewardStats] | None:
    """One fit of the trainer's model on every label in `store`, its output renormalised over `clips`: (a copy of
    the weights, a copy of the trainer's state, the fit's stats), or None when there are no labels yet."""
    stats = trainer.fit(store)
    if stats is None:
        return None
    trainer.model.normalise_outputs(clips)
    weights = {k: v.detach().clone() for k, v in _state(trainer.model).items()}
    return weights, copy.deepcopy(trainer.state_dict()), stats


def _serve_fits(conn: Connection, trainer: RewardTrainer, open_store: Callable[[], Store], threads: int) -> None:
    """The fitting process: fit on every request until "stop" (or the run's end of the pipe closes)."""
    torch.set_num_threads(threads)
    store = open_store()
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:
                return
            if isinstance(request, str) and request == "stop":
                return
            start = time.perf_counter()
            try:
                result = fit_once(trainer, store, [] if request is None else [request])
            except BaseException as e:  # noqa: BLE001 - sent to the run, which ends with it
                conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
                return
            conn.send(("done", result, time.perf_counter() - start))
    finally:
        store.close()


def _state(model: RewardModel) -> dict[str, Any]:
    return model.state_dict()  # type: ignore[attr-defined, no-any-return]


def _load(model: RewardModel, state: dict[str, Any]) -> None:
    model.load_state_dict(state)  # type: ignore[attr-defined]
