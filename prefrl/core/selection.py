"""Choosing which pairs of clips to ask about."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch

from prefrl.config import SelectionKind
from prefrl.core.data import Clip
from prefrl.core.reward.model import RewardModel


class PairSelector(Protocol):
    def select(self, clips: Sequence[Clip], n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        """Return up to `n` pairs of indices into `clips`."""
        ...

    def select_references(self, clips: Sequence[Clip], references: Sequence[int], n: int, exclude: set[int],
                          rng: np.random.Generator, load: Callable[[int], Clip]) -> list[tuple[int, int]]:
        """Return up to `n` pairs (index into `clips` not in `exclude`, one of `references`: ids of stored clips,
        which `load` reads)."""
        ...


def random_pairs(n_clips: int, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """`n` pairs of distinct clips; no clip is used twice while there are enough clips."""
    if n_clips < 2 or n <= 0:
        return []
    if 2 * n <= n_clips:
        idx = rng.choice(n_clips, size=2 * n, replace=False)
        return [(int(idx[2 * k]), int(idx[2 * k + 1])) for k in range(n)]
    pairs = []
    for _ in range(n):
        a, b = rng.choice(n_clips, size=2, replace=False)
        pairs.append((int(a), int(b)))
    return pairs


def reference_pairs(n_clips: int, references: Sequence[int], n: int, exclude: set[int],
                    rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to `n` pairs (index of a clip not in `exclude`, one of `references`), each drawn at random; no clip
    is used twice, and references may repeat."""
    free = [i for i in range(n_clips) if i not in exclude]
    n = min(n, len(free)) if len(references) else 0
    if n <= 0:
        return []
    picked = rng.choice(free, size=n, replace=False)
    return [(int(i), int(r)) for i, r in zip(picked, rng.choice(np.asarray(references), size=n))]


class RandomSelector:
    def select(self, clips: Sequence[Clip], n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        return random_pairs(len(clips), n, rng)

    def select_references(self, clips: Sequence[Clip], references: Sequence[int], n: int, exclude: set[int],
                          rng: np.random.Generator, load: Callable[[int], Clip]) -> list[tuple[int, int]]:
        return reference_pairs(len(clips), references, n, exclude, rng)


class EnsembleSelector:
    """Scores `oversample * n` random candidate pairs with the ensemble and keeps the `n` most uncertain.
    Pairs against stored clips are chosen the same way: new clips, each against a random stored one.

    disagreement: variance across members of P(left better); entropy: entropy of the mean P.
    """

    def __init__(self, model: RewardModel, kind: SelectionKind, oversample: int = 10) -> None:
        self.model = model
        self.kind = kind
        self.oversample = oversample

    @torch.no_grad()
    def scores(self, clips: Sequence[Clip], pairs: list[tuple[int, int]]) -> np.ndarray:
        used = sorted({i for p in pairs for i in p})
        pos = {c: k for k, c in enumerate(used)}
        feats = torch.stack([self.model.features(clips[i]) for i in used])
        absorbing = torch.tensor([clips[i].absorbing for i in used], dtype=torch.float32, device=feats.device)
        returns = self.model.returns(feats, absorbing, normalised=True)  # (E, C)
        left = torch.tensor([pos[a] for a, _ in pairs])
        right = torch.tensor([pos[b] for _, b in pairs])
        p = torch.sigmoid(returns[:, left] - returns[:, right])  # (E, P)
        if self.kind == "disagreement":
            return p.var(0).cpu().numpy()
        m = p.mean(0).clamp(1e-6, 1 - 1e-6)
        return (-(m * m.log() + (1 - m) * (1 - m).log())).cpu().numpy()

    def select(self, clips: Sequence[Clip], n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        candidates = random_pairs(len(clips), n * self.oversample, rng)
        if len(candidates) <= n or not self.model.fitted:
            return candidates[:n]
        top = np.argsort(-self.scores(clips, candidates))[:n]
        return [candidates[i] for i in top]

    def select_references(self, clips: Sequence[Clip], references: Sequence[int], n: int, exclude: set[int],
                          rng: np.random.Generator, load: Callable[[int], Clip]) -> list[tuple[int, int]]:
        candidates = reference_pairs(len(clips), references, n * self.oversample, exclude, rng)
        if len(candidates) <= n or not self.model.fitted:
            return candidates[:n]
        stored = sorted({r for _, r in candidates})
        at = {r: len(clips) + k for k, r in enumerate(stored)}
        scores = self.scores([*clips, *map(load, stored)], [(i, at[r]) for i, r in candidates])
        return [candidates[i] for i in np.argsort(-scores)[:n]]


def make_selector(kind: SelectionKind, model: RewardModel, oversample: int) -> PairSelector:
    if kind == "random":
        return RandomSelector()
    return EnsembleSelector(model, kind, oversample)
