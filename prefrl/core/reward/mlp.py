"""The body for flat observations: E MLPs r(s, a) over the observation and the action, in one batched call."""

from __future__ import annotations

import math
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prefrl.config import RewardModelConfig
from prefrl.errors import PrefrlError


def action_encoding(act_space: gym.Space) -> tuple[int | None, int]:
    """(number of discrete actions, or None for a Box; width of the action's features: one-hot or flat)."""
    if isinstance(act_space, gym.spaces.Discrete):
        return int(act_space.n), int(act_space.n)
    if isinstance(act_space, gym.spaces.Box):
        return None, int(np.prod(act_space.shape))
    raise PrefrlError(f"action space {act_space} is not supported: use Box or Discrete actions")


class EnsembleLinear(nn.Module):
    """E independent linear layers applied as one batched matmul: (E, N, in) -> (E, N, out)."""

    def __init__(self, members: int, n_in: int, n_out: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(members, n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class MlpBody(nn.Module):
    """`members` MLPs over (flattened observation, action; one-hot for discrete actions; with `action_squares`, a
    continuous action's components squared too), with inputs standardised by statistics fixed at the first labels."""

    in_mean: torch.Tensor
    in_std: torch.Tensor

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, cfg: RewardModelConfig) -> None:
        super().__init__()
        self.obs_dim = int(np.prod(obs_space.shape or ()))
        self.n_actions, self.act_dim = action_encoding(act_space)
        self.squares = cfg.action_squares and self.n_actions is None  # a one-hot action squared is itself
        self.squares_lr = cfg.squares_lr if self.squares else None
        self.members = cfg.members
        width = self.obs_dim + self.act_dim * (2 if self.squares else 1)  # of the encoded, standardised inputs
        self.mlp_width = width - self.act_dim if self.squares_lr is not None else width
        dims = [self.mlp_width] + [cfg.hidden] * cfg.layers
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [EnsembleLinear(cfg.members, a, b), nn.LeakyReLU(0.01)]
        layers.append(EnsembleLinear(cfg.members, dims[-1], 1))
        self.net = nn.Sequential(*layers)
        # With `squares_lr`, the squares' own linear term: one weight per member and action component.
        self.square_weight = (nn.Parameter(torch.zeros(cfg.members, 1, self.act_dim)) if self.squares_lr is not None
                              else None)
        self.register_buffer("in_mean", torch.zeros(width))
        self.register_buffer("in_std", torch.ones(width))
        self._views: tuple[tuple[int, ...], list[np.ndarray]] | None = None

    def encode(self, obs: np.ndarray | torch.Tensor, acts: np.ndarray | torch.Tensor,
               device: torch.device) -> torch.Tensor:
        o = torch.as_tensor(obs, dtype=torch.float32, device=device)
        lead = o.shape[:-1]
        a = torch.as_tensor(acts, device=device)
        if self.n_actions is not None:
            a = nn.functional.one_hot(a.long().reshape(lead), self.n_actions).float()
        else:
            a = a.float().reshape(*lead, self.act_dim)
            if self.squares:
                a = torch.cat([a, a * a], dim=-1)
        return torch.cat([o, a], dim=-1)

    def fit_inputs(self, x: torch.Tensor) -> None:
        flat = x.reshape(-1, x.shape[-1])
        self.in_mean.copy_(flat.mean(0))
        self.in_std.copy_(flat.std(0).clamp_min(1e-3))

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        return self.per_member(x.unsqueeze(0).expand(self.members, *x.shape))

    def per_member(self, x: torch.Tensor) -> torch.Tensor:
        h = ((x - self.in_mean) / self.in_std).reshape(self.members, -1, x.shape[-1])
        r = self.net(h[..., :self.mlp_width])[..., 0]
        if self.square_weight is not None:
            r = r + (h[..., self.mlp_width:] * self.square_weight).sum(-1)
        return r.reshape(x.shape[:-1])

    def numpy_shared(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        """`shared` for a batch of raw CPU steps, in numpy: (N, *obs_shape), (N, *act_shape) -> (E, N). The agent's
        reward calls this every vectorised step, where torch's per-call overhead cost more than the arithmetic."""
        mean, std, *layers = self._numpy_views()
        o = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        if self.n_actions is not None:
            a = np.eye(self.n_actions, dtype=np.float32)[np.asarray(acts, dtype=np.int64).reshape(len(obs))]
        else:
            a = np.asarray(acts, dtype=np.float32).reshape(len(obs), self.act_dim)
            if self.squares:
                a = np.concatenate([a, a * a], axis=1)
        x = (np.concatenate([o, a], axis=1) - mean) / std
        if self.square_weight is not None:
            *layers, square_weight = layers
        h = x[:, :self.mlp_width]
        for i in range(0, len(layers), 2):
            h = np.matmul(h, layers[i]) + layers[i + 1]  # (E, N, out)
            if i + 2 < len(layers):
                h = np.maximum(h, 0.01 * h)
        if self.square_weight is not None:
            return h[..., 0] + (x[:, self.mlp_width:] * square_weight).sum(-1)
        return h[..., 0]

    def _numpy_views(self) -> list[np.ndarray]:
        """Numpy views of the tensors (they share memory, so fits and loaded weights show through), made again
        only when a tensor is replaced (moved, re-created)."""
        tensors = [self.in_mean, self.in_std] + [t for m in self.net if isinstance(m, EnsembleLinear)
                                                 for t in (m.weight, m.bias)]
        if self.square_weight is not None:
            tensors.append(self.square_weight)
        key = tuple(t.data_ptr() for t in tensors)
        if self._views is None or self._views[0] != key:
            self._views = (key, [t.detach().numpy() for t in tensors])
        return self._views[1]

    def penalised_weights(self) -> Iterator[torch.Tensor]:
        yield from (m.weight for m in self.net if isinstance(m, EnsembleLinear))
        if self.square_weight is not None:
            yield self.square_weight

    def own_rates(self) -> list[tuple[nn.Parameter, float]]:
        """Parameters Adam fits at a rate of their own (the squares' linear term, at `squares_lr`)."""
        if self.square_weight is None or self.squares_lr is None:
            return []
        return [(self.square_weight, self.squares_lr)]
