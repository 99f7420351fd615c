"""The body for image observations: the Atari reward network of Christiano et al. (2017, appendix A.2).

Four convolutions (7x7, 5x5, 3x3, 3x3; 16 filters; strides 3, 2, 1, 1) with leaky ReLU, then a dense layer of 64
that also takes the action one-hot, then one output. Batch norm and dropout are left out; L2 (the trainer's,
adapted to the validation loss) applies to every layer's weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prefrl.config import RewardModelConfig
from prefrl.core.reward.mlp import EnsembleLinear, action_encoding
from prefrl.errors import PrefrlError

CONVS = ((7, 3), (5, 2), (3, 1), (3, 1))
"""(kernel, stride) of each convolution."""
FILTERS = 16
DENSE = 64
MIN_SIDE = 43
"""The smallest image side the convolutions can take (84x84 Atari frames leave 7x7)."""


def _conv_out(side: int) -> int:
    for k, s in CONVS:
        side = (side - k) // s + 1
    return side


class CnnBody(nn.Module):
    """`members` CNNs r(s, a) over image observations, all run by one grouped convolution per layer.

    Observations are (H, W, C) or (C, H, W) images, uint8 (scaled by 1/255) or float. `encode()` keeps uint8
    images as uint8 (the flattened image and the action one-hot, concatenated), so clips of 84x84x4 frames cost
    28 KB a step in the trainer's cache; the network converts to float one chunk of steps at a time. Members are
    stacked along channels: the convolutions use ``groups=members`` and the dense layers are `EnsembleLinear`.
    """

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, cfg: RewardModelConfig,
                 chunk: int = 1024) -> None:
        super().__init__()
        shape = tuple(int(d) for d in (obs_space.shape or ()))
        self.channels_first = int(np.argmin(shape)) == 0  # as SB3 decides for images
        c, h, w = shape if self.channels_first else (shape[2], shape[0], shape[1])
        if min(h, w) < MIN_SIDE:
            raise PrefrlError(f"image observations of {h}x{w} are too small for the CNN reward model (at least "
                              f"{MIN_SIDE}x{MIN_SIDE}): resize them (gymnasium.wrappers.ResizeObservation((84, 84)))")
        self.obs_shape = shape
        self.image = (c, h, w)
        self.obs_dim = int(np.prod(shape))
        self.uint8 = obs_space.dtype == np.uint8
        self.n_actions, self.act_dim = action_encoding(act_space)
        self.members = e = cfg.members
        self.chunk = chunk
        convs: list[nn.Module] = []
        n_in = c
        for k, s in CONVS:
            convs += [nn.Conv2d(e * n_in, e * FILTERS, k, stride=s, groups=e), nn.LeakyReLU(0.01)]
            n_in = FILTERS
        self.convs = nn.Sequential(*convs)
        n_conv = FILTERS * _conv_out(h) * _conv_out(w)
        self.dense = nn.Sequential(EnsembleLinear(e, n_conv + self.act_dim, DENSE), nn.LeakyReLU(0.01),
                                   EnsembleLinear(e, DENSE, 1))

    def encode(self, obs: np.ndarray | torch.Tensor, acts: np.ndarray | torch.Tensor,
               device: torch.device) -> torch.Tensor:
        o = torch.as_tensor(obs, device=device)
        lead = o.shape[:o.dim() - len(self.obs_shape)]
        a = torch.as_tensor(acts, device=device)
        small = self.uint8 and self.n_actions is not None
        dtype = torch.uint8 if small else torch.float32
        if self.n_actions is not None:
            a = nn.functional.one_hot(a.long().reshape(lead), self.n_actions)
        else:
            a = a.reshape(*lead, self.act_dim)
        return torch.cat([o.reshape(*lead, self.obs_dim).to(dtype), a.to(dtype)], dim=-1)

    def fit_inputs(self, x: torch.Tensor) -> None:
        """Images need no fitted statistics: uint8 pixels are scaled by 1/255."""

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) features -> (N, C, H, W) float images."""
        img = x[:, :self.obs_dim].float()
        if self.uint8:
            img = img / 255.0
        img = img.reshape(len(x), *self.obs_shape)
        return img if self.channels_first else img.permute(0, 3, 1, 2)

    def _head(self, conv_out: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """(N, E*F, h, w) conv outputs of all members, (E, N, A) actions -> (E, N) rewards."""
        n = conv_out.shape[0]
        h = conv_out.reshape(n, self.members, -1).transpose(0, 1)  # (E, N, F*h*w)
        return self.dense(torch.cat([h, acts], dim=-1)).squeeze(-1)

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        """The first convolution runs once over the shared images with all members' filters (no copy per
        member); the rest are grouped."""
        flat = x.reshape(-1, x.shape[-1])
        first, rest = cast(nn.Conv2d, self.convs[0]), self.convs[1:]
        outs = []
        for part in flat.split(self.chunk):
            h = nn.functional.conv2d(self._images(part), first.weight, first.bias, stride=first.stride)
            acts = part[:, self.obs_dim:].float().expand(self.members, -1, -1)
            outs.append(self._head(rest(h), acts))
        return torch.cat(outs, dim=1).reshape(self.members, *x.shape[:-1])

    def per_member(self, x: torch.Tensor) -> torch.Tensor:
        e = self.members
        flat = x.reshape(e, -1, x.shape[-1])
        outs = []
        for part in flat.split(self.chunk, dim=1):
            n = part.shape[1]
            img = self._images(part.reshape(e * n, -1)).reshape(e, n, *self.image)
            img = img.transpose(0, 1).reshape(n, e * self.image[0], *self.image[1:])  # members along channels
            outs.append(self._head(self.convs(img), part[..., self.obs_dim:].float()))
        return torch.cat(outs, dim=1).reshape(x.shape[:-1])

    def penalised_weights(self) -> Iterator[torch.Tensor]:
        for m in self.modules():
            if isinstance(m, (EnsembleLinear, nn.Conv2d)):
                yield m.weight
