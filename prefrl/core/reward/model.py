"""The reward-model interface, and the one ensemble that every body (MLP, CNN; text) plugs into.

The trainer, pair selection and the loop depend on `RewardModel` only. `RewardEnsemble` implements it once for
any `Body`: what is the same for every kind of input lives here (the members' output normalisation, the
absorbing state's reward, returns of clips), and what depends on the input lives in the body (how a step is
encoded, the network, input statistics).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from prefrl.core.data import Clip

NORMALISE_STEPS = 10_000
"""At most this many (evenly spaced) steps are scored to normalise the members' outputs."""
NUMPY_ROWS = 64
"""An MLP's reward for at most this many steps is computed in numpy, where torch's per-call overhead would cost more
than the arithmetic (a step of a few env copies); larger batches (a rollout's, in chunks) go through torch, whose CPU
threads `--threads` sets. Measured on the Hopper model, ms per 2,048 steps on a busy CPU: calls of 4 rows 287
(numpy) / 349 (torch); calls of 256 rows 39 (numpy, with OpenBLAS's threads) / 21 (torch, one thread)."""
LIVE_FLOOR_QUANTILE = 0.01
"""`live_floor` is this quantile of the live steps' rewards over recent behaviour. Measured at the end of 1M-step runs
(700 oracle labels): the learned absorbing reward sat below it on Hopper (-6.3, -4.3, -4.2 against floors of -4.0,
-2.6, -2.5), Walker2d (-4.0, -4.0, -4.5 against -3.0, -3.2, -3.7) and InvertedPendulum (-80 against -7.7), and above
the mean of live steps on Ant (+0.42 and +0.25), where the agent learned to fall within 15 steps."""


@runtime_checkable
class RewardModel(Protocol):
    """What the trainer, pair selection and the loop need of a reward model.

    Shapes: E members, P clips, T steps of a clip, D features of a step (as `features` stores them).
    """

    members: int

    @property
    def device(self) -> torch.device: ...

    @property
    def fitted(self) -> bool:
        """Whether the model has been fitted to labels (until then it rewards nothing)."""
        ...

    def features(self, clip: Clip) -> torch.Tensor:
        """One clip's steps as the model reads them: (T, D). The trainer caches these per clip."""
        ...

    def returns(self, feats: torch.Tensor, absorbing: torch.Tensor, *, normalised: bool = False) -> torch.Tensor:
        """Every member's return of the same clips: (P, T, D), (P,) absorbing steps -> (E, P)."""
        ...

    def member_returns(self, feats: torch.Tensor, absorbing: torch.Tensor,
                       steps: tuple[torch.Tensor, int] | None = None) -> torch.Tensor:
        """Each member's raw return of its own clips: (E, P, T, D), (E, P) -> (E, P). Training uses this. With
        `steps` (positions (K,), clip length T), `feats` holds only those K steps of each clip (E, P, K, D), and
        the return is estimated from them: their sum scaled by T/K."""
        ...

    @property
    def reads_images(self) -> bool:
        """Whether a step is an image (a CNN pass each): the trainer may then read only some steps of a clip."""
        ...

    def begin(self, feats: torch.Tensor) -> None:
        """Called once, with the first labels' features (N, T, D), before the first fit."""
        ...

    def normalise_outputs(self, clips: Sequence[Clip]) -> None:
        """Rescale each member's output to zero mean, unit std over the real steps of `clips`."""
        ...

    def weight_penalty(self) -> torch.Tensor:
        """Sum of squared weights the trainer's L2 applies to."""
        ...

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """The parameters as Adam's groups: all at `lr`, except those the body fits at a rate of their own."""
        ...

    def reward(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        """What the agent receives for a batch of steps: (N, ...), (N, ...) -> (N,)."""
        ...

    def absorbing_reward(self) -> float:
        """The learned reward of a step of the absorbing state after a termination, on the agent's scale."""
        ...

    def live_floor(self) -> float:
        """A low quantile (`LIVE_FLOOR_QUANTILE`) of the live steps' rewards over recent behaviour, on the agent's
        scale (inf until fitted, or where there is no absorbing state): what the agent receives for an absorbing
        step is capped there, so that ending an episode pays less than nearly any way of living."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def train(self, mode: bool = True) -> RewardModel: ...

    def eval(self) -> RewardModel: ...

    def save(self, path: Path) -> None: ...

    def load(self, path: Path) -> None: ...


class Body(Protocol):
    """The part of an ensemble that depends on the input: E member networks evaluated in one call."""

    members: int

    def encode(self, obs: np.ndarray | torch.Tensor, acts: np.ndarray | torch.Tensor,
               device: torch.device) -> torch.Tensor:
        """Steps (..., *obs_shape), (..., *act_shape) -> features (..., D), in the form the trainer caches."""
        ...

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        """Every member on the same inputs: (..., D) -> (E, ...)."""
        ...

    def per_member(self, x: torch.Tensor) -> torch.Tensor:
        """Each member on its own inputs: (E, ..., D) -> (E, ...)."""
        ...

    def fit_inputs(self, x: torch.Tensor) -> None:
        """Fix input statistics from the first labelled steps (..., D) (a no-op for bodies that need none)."""
        ...

    def penalised_weights(self) -> Iterator[torch.Tensor]:
        """The weights L2 applies to (biases are not penalised)."""
        ...

    def own_rates(self) -> list[tuple[nn.Parameter, float]]:
        """Parameters Adam fits at a learning rate of their own, with that rate (most bodies: none)."""
        ...


class RewardEnsemble(nn.Module):
    """`RewardModel` for any `Body`: members' outputs normalised over recent behaviour, then averaged; a learned
    reward for the absorbing state; returns of clips whose last steps may be that state.

    Example:
        >>> model = make_reward_model(env.observation_space, env.action_space, RewardModelConfig())
        >>> model.reward(obs_batch, act_batch)  # zeros until the model has been fitted to labels
    """

    out_mean: torch.Tensor
    out_std: torch.Tensor
    floor: torch.Tensor
    is_fitted: torch.Tensor

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.members: int = int(body.members)  # type: ignore[arg-type]
        self.absorbing = nn.Parameter(torch.zeros(self.members))
        self.register_buffer("out_mean", torch.zeros(self.members))
        self.register_buffer("out_std", torch.ones(self.members))
        self.register_buffer("floor", torch.tensor(float("inf")))
        self.register_buffer("is_fitted", torch.zeros((), dtype=torch.bool))

    @property
    def device(self) -> torch.device:
        return self.out_mean.device

    @property
    def fitted(self) -> bool:
        return bool(self.is_fitted)

    def _body(self) -> Body:
        return self.body  # type: ignore[return-value]

    # -- inputs ------------------------------------------------------------------------------------
    def step_features(self, obs: np.ndarray | torch.Tensor, acts: np.ndarray | torch.Tensor) -> torch.Tensor:
        return self._body().encode(obs, acts, self.device)

    def features(self, clip: Clip) -> torch.Tensor:
        return self.step_features(clip.obs, clip.acts)

    def begin(self, feats: torch.Tensor) -> None:
        self._body().fit_inputs(feats)
        self.is_fitted.fill_(True)

    # -- outputs -----------------------------------------------------------------------------------
    def normalised(self, x: torch.Tensor) -> torch.Tensor:
        """Per-member rewards normalised to zero mean, unit std: (..., D) -> (E, ...)."""
        return self._scaled(self._body().shared(x))

    def _scaled(self, r: torch.Tensor) -> torch.Tensor:
        """Per-member raw rewards (E, ...) normalised with each member's output statistics."""
        view = (self.members,) + (1,) * (r.dim() - 1)
        return (r - self.out_mean.view(view)) / self.out_std.view(view)

    def normalised_absorbing(self) -> torch.Tensor:
        """Each member's absorbing-state reward on the scale of `normalised`: (E,)."""
        return (self.absorbing - self.out_mean) / self.out_std

    def _sum(self, r: torch.Tensor, absorbing: torch.Tensor, absorbing_reward: torch.Tensor,
             steps: tuple[torch.Tensor, int] | None = None) -> torch.Tensor:
        """Clip returns (E, P) from per-step rewards (E, P, T) whose last `absorbing` (P,) or (E, P) steps are the
        absorbing state, each worth `absorbing_reward` (E,). With `steps` (positions (K,), length T), `r` holds
        the rewards at those positions only (E, P, K) and their live sum is scaled by T/K."""
        if steps is None:
            length = r.shape[-1]
            positions, scale = torch.arange(length, device=r.device), 1.0
        else:
            positions, length = steps
            scale = length / len(positions)
        live = positions < (length - absorbing).unsqueeze(-1)
        return (r * live).sum(-1) * scale + absorbing * absorbing_reward.view(self.members, 1)

    def returns(self, feats: torch.Tensor, absorbing: torch.Tensor, *, normalised: bool = False) -> torch.Tensor:
        if normalised:
            return self._sum(self.normalised(feats), absorbing, self.normalised_absorbing())
        return self._sum(self._body().shared(feats), absorbing, self.absorbing)

    def member_returns(self, feats: torch.Tensor, absorbing: torch.Tensor,
                       steps: tuple[torch.Tensor, int] | None = None) -> torch.Tensor:
        return self._sum(self._body().per_member(feats), absorbing, self.absorbing, steps)

    @property
    def reads_images(self) -> bool:
        return bool(getattr(self.body, "reads_images", False))

    def weight_penalty(self) -> torch.Tensor:
        return sum((w**2).sum() for w in self._body().penalised_weights())  # type: ignore[return-value]

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        own = self._body().own_rates()
        mine = {id(p) for p, _ in own}
        return [{"params": [p for p in self.parameters() if id(p) not in mine], "lr": lr},
                *({"params": [p], "lr": rate} for p, rate in own)]

    @torch.no_grad()
    def normalise_outputs(self, clips: Sequence[Clip]) -> None:
        if not clips:
            return
        sample = normalisation_sample(clips)
        r = self._body().shared(self.step_features(sample.obs, sample.acts))
        self.out_mean.copy_(r.mean(1))
        self.out_std.copy_(r.std(1).clamp_min(1e-6) if r.shape[1] > 1 else torch.ones_like(self.out_std))
        self.floor.fill_(torch.quantile(self._scaled(r).mean(0), LIVE_FLOOR_QUANTILE))  # on the agent's scale

    @torch.no_grad()
    def reward(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        if not self.fitted:
            return np.zeros(len(obs), dtype=np.float32)
        fast = getattr(self.body, "numpy_shared", None)
        if fast is not None and self.device.type == "cpu" and len(obs) <= NUMPY_ROWS:  # without torch's call overhead
            r = fast(obs, acts)
            mean, std = self.out_mean.numpy(), self.out_std.numpy()
            return ((r - mean[:, None]) / std[:, None]).mean(0).astype(np.float32)
        return self.normalised(self.step_features(obs, acts)).mean(0).cpu().numpy()

    @torch.no_grad()
    def absorbing_reward(self) -> float:
        return float(self.normalised_absorbing().mean()) if self.fitted else 0.0

    def live_floor(self) -> float:
        return float(self.floor) if self.fitted else math.inf

    # -- files -------------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        torch.save(self.state_dict(), path)

    def load(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.load_state_dict(_upgrade(state, self.absorbing))


def normalisation_sample(clips: Sequence[Clip]) -> Clip:
    """The live steps of `clips` that `normalise_outputs` scores (at most NORMALISE_STEPS, evenly spaced), as one
    clip: normalising over it is normalising over `clips`. What a fitting process is sent instead of the clips."""
    obs = np.concatenate([c.obs[:c.length - c.absorbing] for c in clips])
    acts = np.concatenate([c.acts[:c.length - c.absorbing] for c in clips])
    idx = np.linspace(0, len(obs) - 1, min(len(obs), NORMALISE_STEPS)).round().astype(np.int64)
    return Clip(obs=obs[idx], acts=acts[idx], true_rewards=np.zeros(len(idx), dtype=np.float32))


def _upgrade(state: dict[str, torch.Tensor], absorbing: torch.Tensor) -> dict[str, torch.Tensor]:
    """A state dict saved by an older version: before the ensemble held a body (keys without 'body.'; 'fitted'; no
    'absorbing'), or before the live floor."""
    if any(k.startswith("body.") for k in state):
        out = dict(state)
    else:
        own = {"absorbing", "out_mean", "out_std"}
        out = {("is_fitted" if k == "fitted" else k if k in own else f"body.{k}"): v for k, v in state.items()}
    out.setdefault("absorbing", torch.zeros_like(absorbing))
    out.setdefault("floor", torch.tensor(float("inf")))  # saved before the cap: no floor known
    return out
