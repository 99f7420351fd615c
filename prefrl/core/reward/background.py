"""Fitting the reward model off the agent's path: a copy of the model trains on a thread while PPO collects and
learns, and the agent's model takes the new weights between rollouts.

The thread reads the labels from the store (its own connection), trains the trainer's model (the copy), renormalises
its output over a snapshot of recent clips, and leaves the weights and the trainer's state for the loop to take.
Torch releases the GIL inside its kernels, so the fit runs beside PPO on a second core; on one core the two share it.
A failed fit is raised, with its cause, the next time the loop looks (`swap`, `wait`).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

import torch

from prefrl.core.data import Clip
from prefrl.core.reward.model import RewardModel
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
                stats = self.trainer.fit(store)
                if stats is None:
                    return
                model = self.trainer.model
                model.normalise_outputs(clips)
            weights = {k: v.detach().clone() for k, v in _state(model).items()}
            with self._lock:
                self._ready = weights
                self._saved = (weights, copy.deepcopy(self.trainer.state_dict()))
                self.stats = stats
                self.fits += 1
        except BaseException as e:  # noqa: BLE001 - handed to the loop's thread, which ends the run with it
            self._error = e

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

    def saved_state(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(model weights, trainer state) of the last completed fit: what a checkpoint keeps, whatever runs now."""
        with self._lock:
            return self._saved

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise FitFailed(f"the reward model's background fit failed: {type(error).__name__}: {error}") from error


def _state(model: RewardModel) -> dict[str, Any]:
    return model.state_dict()  # type: ignore[attr-defined, no-any-return]


def _load(model: RewardModel, state: dict[str, Any]) -> None:
    model.load_state_dict(state)  # type: ignore[attr-defined]
