"""The reward model: an ensemble of small networks over (observation, action), evaluated in one call."""

from __future__ import annotations

import math
from pathlib import Path

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


class RewardEnsemble(nn.Module):
    """`members` MLPs r(s, a), each with its own output normalisation.

    Inputs are the flattened observation and the action (one-hot for discrete actions), standardised
    with statistics fixed at the first update. `reward()` is what the agent sees: each member's output
    normalised to zero mean and unit std over recent behaviour, then averaged.
    """

    in_mean: torch.Tensor
    in_std: torch.Tensor
    out_mean: torch.Tensor
    out_std: torch.Tensor
    fitted: torch.Tensor

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, cfg: RewardModelConfig) -> None:
        super().__init__()
        assert obs_space.shape is not None and len(obs_space.shape) <= 1, "flat observations: see make_reward_model"
        self.obs_dim = int(np.prod(obs_space.shape))
        self.n_actions, self.act_dim = action_encoding(act_space)
        self.members = cfg.members
        dims = [self.obs_dim + self.act_dim] + [cfg.hidden] * cfg.layers
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [EnsembleLinear(cfg.members, a, b), nn.LeakyReLU(0.01)]
        layers.append(EnsembleLinear(cfg.members, dims[-1], 1))
        self.net = nn.Sequential(*layers)
        self.absorbing = nn.Parameter(torch.zeros(cfg.members))
        d = self.obs_dim + self.act_dim
        self.register_buffer("in_mean", torch.zeros(d))
        self.register_buffer("in_std", torch.ones(d))
        self.register_buffer("out_mean", torch.zeros(cfg.members))
        self.register_buffer("out_std", torch.ones(cfg.members))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @property
    def device(self) -> torch.device:
        return self.in_mean.device

    def features(self, obs: np.ndarray | torch.Tensor, acts: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(..., obs_dim), (..., act_dim) or (...) for discrete actions -> (..., obs_dim + act_dim)."""
        o = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        lead = o.shape[:-1]
        a = torch.as_tensor(acts, device=self.device)
        if self.n_actions is not None:
            a = nn.functional.one_hot(a.long().reshape(lead), self.n_actions).float()
        else:
            a = a.float().reshape(*lead, self.act_dim)
        return torch.cat([o, a], dim=-1)

    def fit_input_normalisation(self, x: torch.Tensor) -> None:
        flat = x.reshape(-1, x.shape[-1])
        self.in_mean.copy_(flat.mean(0))
        self.in_std.copy_(flat.std(0).clamp_min(1e-3))
        self.fitted.fill_(True)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised rewards of every member for the same inputs: (..., D) -> (E, ...)."""
        return self.raw_per_member(x.unsqueeze(0).expand(self.members, *x.shape))

    def raw_per_member(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised rewards where each member sees its own inputs: (E, ..., D) -> (E, ...)."""
        h = ((x - self.in_mean) / self.in_std).reshape(self.members, -1, x.shape[-1])
        return self.net(h).reshape(x.shape[:-1])

    def normalised(self, x: torch.Tensor) -> torch.Tensor:
        """Per-member rewards normalised to zero mean, unit std: (..., D) -> (E, ...)."""
        r = self.raw(x)
        view = (self.members,) + (1,) * (r.dim() - 1)
        return (r - self.out_mean.view(view)) / self.out_std.view(view)

    def clip_returns(self, r: torch.Tensor, absorbing: torch.Tensor, absorbing_reward: torch.Tensor) -> torch.Tensor:
        """Clip returns (E, ...) from per-step rewards r (E, ..., T), where the last `absorbing` (...) or
        (E, ...) steps of each clip are the absorbing state, worth `absorbing_reward` (E,) each."""
        steps = r.shape[-1]
        live = torch.arange(steps, device=r.device) < (steps - absorbing).unsqueeze(-1)
        view = (self.members,) + (1,) * (r.dim() - 2)
        return (r * live).sum(-1) + absorbing * absorbing_reward.view(view)

    def normalised_absorbing(self) -> torch.Tensor:
        """Each member's absorbing-state reward on the scale of `normalised`: (E,)."""
        return (self.absorbing - self.out_mean) / self.out_std

    @torch.no_grad()
    def absorbing_reward(self) -> float:
        """What the agent receives per step of the absorbing state (0 until the model has seen labels)."""
        return float(self.normalised_absorbing().mean()) if bool(self.fitted) else 0.0

    @torch.no_grad()
    def fit_output_normalisation(self, obs: np.ndarray, acts: np.ndarray) -> None:
        r = self.raw(self.features(obs, acts))
        self.out_mean.copy_(r.mean(1))
        self.out_std.copy_(r.std(1).clamp_min(1e-6))

    @torch.no_grad()
    def reward(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        """The learned reward for a batch of steps: (N, *obs_shape), (N, *act_shape) -> (N,).
        Zero until the model has seen its first labels."""
        if not bool(self.fitted):
            return np.zeros(len(obs), dtype=np.float32)
        return self.normalised(self.features(obs, acts)).mean(0).cpu().numpy()

    def save(self, path: Path) -> None:
        torch.save(self.state_dict(), path)

    def load(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        state.setdefault("absorbing", torch.zeros_like(self.absorbing))  # saved before absorbing states existed
        self.load_state_dict(state)
