"""Training the reward ensemble from the store's labels (Christiano et al. 2017, section 2.2.3)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from prefrl.config import RewardModelConfig
from prefrl.core.reward.model import RewardModel
from prefrl.core.store import Store


@dataclass(frozen=True)
class PreferenceData:
    """Labelled comparisons as tensors.

    Attributes:
        left: (P, T, D) features of the left clips.
        right: (P, T, D) features of the right clips.
        target: (P,) probability that left is better (1, 0, or 0.5 for "equal").
        is_val: (P,) bool, held out for validation.
        left_absorbing, right_absorbing: (P,) absorbing steps at the end of each clip (see `Clip.absorbing`).
        keys: (left clip id, right clip id, target) of each comparison: what the trainer remembers as trained on.
    """

    left: torch.Tensor
    right: torch.Tensor
    target: torch.Tensor
    is_val: torch.Tensor
    left_absorbing: torch.Tensor
    right_absorbing: torch.Tensor
    keys: tuple[tuple[int, int, float], ...] = ()

    def __len__(self) -> int:
        return int(self.target.shape[0])


@dataclass(frozen=True)
class RewardStats:
    """What one reward-model update achieved."""

    n_train: int
    n_val: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    l2: float
    n_new: int = 0
    """Training comparisons not trained on before this update."""
    steps: int = 0
    """Gradient steps this update took."""


def is_held_out(query_id: int, fraction: float) -> bool:
    """A fixed, seed-free split: a query stays in the same split across updates and resumes."""
    return ((query_id * 2654435761) % 2**32) / 2**32 < fraction


def preference_loss(ret_left: torch.Tensor, ret_right: torch.Tensor, target: torch.Tensor,
                    random_answer: float) -> torch.Tensor:
    """Bradley-Terry cross-entropy on summed clip rewards, with a teacher who answers at random
    with probability `random_answer`. Elementwise; shapes broadcast."""
    p_left = random_answer / 2 + (1 - random_answer) * torch.sigmoid(ret_left - ret_right)
    p_left = p_left.clamp(1e-6, 1 - 1e-6)
    return -(target * torch.log(p_left) + (1 - target) * torch.log1p(-p_left))


def rating_pairs(store: Store, rng: np.random.Generator, val_fraction: float,
                 per_clip: int = 4) -> list[tuple[int, int, float, bool]]:
    """Comparisons implied by ratings: a clip rated higher is preferred to one rated lower, across queries.

    Each rated clip is paired with up to `per_clip` rated clips of other queries (pairs within a query are
    already labelled by the UI). Returns (left clip, right clip, P(left better), held out).
    """
    by_clip: dict[int, list[float]] = {}
    for cid, value, _ in store.ratings():
        by_clip.setdefault(cid, []).append(value)
    if len(by_clip) < 2:
        return []
    query_of = store.query_of_clips()
    ids = np.array(sorted(by_clip))
    mean = {c: float(np.mean(v)) for c, v in by_clip.items()}
    out = []
    for a in ids:
        for b in rng.choice(ids, size=min(per_clip, len(ids) - 1), replace=False):
            if a == b or query_of.get(int(a)) == query_of.get(int(b)):
                continue
            ra, rb = mean[int(a)], mean[int(b)]
            target = 1.0 if ra > rb else 0.0 if ra < rb else 0.5
            out.append((int(a), int(b), target, is_held_out(int(a) * 7919 + int(b), val_fraction)))
    return out


def gradient_steps(cfg: RewardModelConfig, n: int) -> int:
    """Gradient steps of an update that trains on `n` comparisons: `epochs` passes in batches of at most
    `batch_size`, capped at `max_updates`."""
    return min(cfg.max_updates, math.ceil(cfg.epochs * n / min(cfg.batch_size, n))) if n else 0


class RewardTrainer:
    """Fits a `RewardModel` to the labelled comparisons in a store.

    Each member trains on its own bootstrap sample; a fixed share of labels is held out, and the L2
    weight is adapted after every update to keep validation loss within 1.1-1.5x training loss.

    An update's gradient budget follows the labels that are new since the last one, not all labels: it trains
    `epochs` passes over the new comparisons plus a replay of at most `replay` old ones drawn afresh each update
    (`RewardModelConfig.replay`, `image_replay` for images; None trains on all of them every time). So a run's fitting
    cost can grow with its labels, not with labels times updates. With `image_steps`, a gradient step on image
    observations reads that many random steps of each clip and scales their sum to the clip's length (an unbiased
    estimate of its return).
    """

    def __init__(self, model: RewardModel, cfg: RewardModelConfig, rng: np.random.Generator) -> None:
        self.model = model
        self.cfg = cfg
        self.rng = rng
        self.l2 = cfg.l2
        self.opt = torch.optim.Adam(model.param_groups(cfg.lr))
        self._clips: dict[int, tuple[torch.Tensor, int]] = {}  # clip id -> (features, absorbing steps)
        self.trained: set[tuple[int, int, float]] = set()
        """(left clip, right clip, target) of every training comparison an update has trained on."""

    def data_from_store(self, store: Store) -> PreferenceData | None:
        """Every comparison label, plus comparisons implied by ratings of single clips."""
        triples = [(q.left_id, q.right_id, lab.answer.target, is_held_out(q.id, self.cfg.val_fraction))
                   for q, lab in store.labelled_pairs() if lab.answer.target is not None]
        triples += rating_pairs(store, self.rng, self.cfg.val_fraction)
        if not triples:
            return None
        for a, b, _, _ in triples:
            for cid in (a, b):
                if cid not in self._clips:
                    clip = store.clip(cid)
                    self._clips[cid] = (self.model.features(clip), clip.absorbing)
        dev = self.model.device

        def side(ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            feats, absorbing = zip(*(self._clips[c] for c in ids))
            return torch.stack(feats), torch.tensor(absorbing, device=dev, dtype=torch.float32)

        (left, left_absorbing), (right, right_absorbing) = side([a for a, _, _, _ in triples]), side(
            [b for _, b, _, _ in triples])
        return PreferenceData(left=left, right=right,
                              target=torch.tensor([t for _, _, t, _ in triples], device=dev, dtype=torch.float32),
                              is_val=torch.tensor([v for _, _, _, v in triples], device=dev),
                              left_absorbing=left_absorbing, right_absorbing=right_absorbing,
                              keys=tuple((a, b, float(t)) for a, b, t, _ in triples))

    def update(self, data: PreferenceData) -> RewardStats:
        """Train every member on the new comparisons and a bounded replay of old ones, then adapt L2."""
        model, cfg = self.model, self.cfg
        if not model.fitted:
            model.begin(torch.cat([data.left, data.right]))
        train_idx = torch.nonzero(~data.is_val).squeeze(1)
        if len(train_idx) == 0:  # too few labels to hold any out: train on all
            train_idx = torch.arange(len(data), device=model.device)
        pool, n_new = self._pool(data, train_idx)
        n = len(pool)
        e = model.members
        steps = 0
        if n:
            if cfg.bootstrap:
                boot = torch.as_tensor(self.rng.integers(0, n, size=(e, n)), device=model.device)
            else:
                boot = torch.arange(n, device=model.device).expand(e, n)
            steps = gradient_steps(cfg, n)
        model.train()
        for _ in range(steps):
            pick = torch.as_tensor(self.rng.integers(0, n, size=(e, min(cfg.batch_size, n))), device=model.device)
            idx = pool[torch.gather(boot, 1, pick)]  # (E, B): each member its own batch
            ret_left, ret_right = self._batch_returns(data, idx)
            loss = preference_loss(ret_left, ret_right, data.target[idx], cfg.random_answer).mean(1).sum()
            loss = loss + self.l2 * model.weight_penalty()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        model.eval()
        if data.keys:
            self.trained.update(data.keys[i] for i in train_idx.tolist())
        train_loss, _ = self.evaluate(data, ~data.is_val)
        val_loss, val_acc = self.evaluate(data, data.is_val)
        if not math.isnan(val_loss) and steps:
            if val_loss > 1.5 * train_loss:
                self.l2 = min(self.l2 * 2, 10.0)
            elif val_loss < 1.1 * train_loss:
                self.l2 = max(self.l2 / 2, 1e-7)
        return RewardStats(n_train=len(train_idx), n_val=int(data.is_val.sum()), train_loss=train_loss,
                           val_loss=val_loss, val_accuracy=val_acc, l2=self.l2, n_new=n_new, steps=steps)

    def _pool(self, data: PreferenceData, train_idx: torch.Tensor) -> tuple[torch.Tensor, int]:
        """What this update trains on: the new training comparisons and at most `replay` (`image_replay` for images)
        old ones (random); with that None, or keys unknown, all of them; none when nothing is new. Returns (indices
        into `data`, count of new ones)."""
        replay = self.cfg.image_replay if self.model.reads_images else self.cfg.replay
        if replay is None or not data.keys:
            return train_idx, len(train_idx)
        is_new = torch.tensor([data.keys[i] not in self.trained for i in train_idx.tolist()], dtype=torch.bool,
                              device=train_idx.device)
        new, old = train_idx[is_new], train_idx[~is_new]
        if len(new) == 0:  # nothing new to learn from: no update (a fit costs what the new labels ask)
            return new, 0
        if len(old) > replay:
            old = old[torch.as_tensor(self.rng.choice(len(old), replay, replace=False),
                                      device=old.device)]
        return torch.cat([new, old]), len(new)

    def _batch_returns(self, data: PreferenceData, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's returns of its batch's left and right clips (E, B): from every step of the clips, or from
        `image_steps` random steps of them (the same for the whole batch) when the model reads images."""
        model, k = self.model, self.cfg.image_steps
        length = data.left.shape[1]
        if k is None or k >= length or not model.reads_images:
            return (model.member_returns(data.left[idx], data.left_absorbing[idx]),
                    model.member_returns(data.right[idx], data.right_absorbing[idx]))
        pos = torch.as_tensor(np.sort(self.rng.choice(length, k, replace=False)), device=model.device)
        rows = idx.unsqueeze(-1)
        return (model.member_returns(data.left[rows, pos], data.left_absorbing[idx], steps=(pos, length)),
                model.member_returns(data.right[rows, pos], data.right_absorbing[idx], steps=(pos, length)))

    @torch.no_grad()
    def evaluate(self, data: PreferenceData, mask: torch.Tensor) -> tuple[float, float]:
        """Mean member loss, and the ensemble's accuracy on the non-equal labels, over `mask`."""
        if int(mask.sum()) == 0:
            return float("nan"), float("nan")
        m = self.model
        ret_l = m.returns(data.left[mask], data.left_absorbing[mask])  # (E, P)
        ret_r = m.returns(data.right[mask], data.right_absorbing[mask])
        target = data.target[mask]
        loss = preference_loss(ret_l, ret_r, target, self.cfg.random_answer).mean().item()
        decided = target != 0.5
        if int(decided.sum()) == 0:
            return loss, float("nan")
        pred_left = (ret_l - ret_r).mean(0) > 0
        acc = (pred_left[decided] == (target[decided] > 0.5)).float().mean().item()
        return loss, acc

    def fit(self, store: Store) -> RewardStats | None:
        """Update the model on every label in `store` (None when there is none yet)."""
        data = self.data_from_store(store)
        return None if data is None else self.update(data)

    def state_dict(self) -> dict[str, object]:
        trained = torch.tensor(sorted(self.trained), dtype=torch.float64).reshape(-1, 3)
        return {"opt": self.opt.state_dict(), "l2": self.l2, "trained": trained}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore the optimiser, L2 and what was trained on (a state saved before that was kept trains every
        label as new once)."""
        self.opt.load_state_dict(state["opt"])  # type: ignore[arg-type]
        self.l2 = float(state["l2"])  # type: ignore[arg-type]
        trained = state.get("trained")
        self.trained = set() if trained is None else {
            (int(a), int(b), float(t)) for a, b, t in trained.tolist()}  # type: ignore[attr-defined]
