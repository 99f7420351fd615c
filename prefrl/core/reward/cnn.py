"""The body for image observations: the Atari reward network of Christiano et al. (2017, appendix A.2).

Four convolutions (7x7, 5x5, 3x3, 3x3; 16 filters; strides 3, 2, 1, 1) with leaky ReLU, then a dense layer of 64
that also takes the action one-hot, then one output. Batch norm and dropout are left out; L2 (the trainer's,
adapted to the validation loss) applies to every layer's weights.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def conv_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype the convolutions run in on `device` for `RewardModelConfig.precision`."""
    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        native = device.type == "cpu" and any(check() for check in checks if check is not None)  # private in torch
    return torch.bfloat16 if native else torch.float32


def _conv_out(side: int) -> int:
    for k, s in CONVS:
        side = (side - k) // s + 1
    return side


class CnnBody(nn.Module):
    """`members` CNNs r(s, a) over image observations, all run by one grouped convolution per layer.

    Observations are (H, W, C) or (C, H, W) images, uint8 (scaled by 1/255) or float. `encode()` keeps uint8
    images as uint8 (the flattened image and the action one-hot, concatenated), so clips of 84x84x4 frames cost
    28 KB a step in the trainer's cache; the network converts to float one chunk of steps at a time. Members are
    stacked along channels: each convolution holds all members' filters as one grouped layer (``groups=members``),
    run one member's slice at a time on channels-last images, and the dense layers are `EnsembleLinear`.
    """

    reads_images = True

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
        self.precision = cfg.precision
        self._dtypes: dict[torch.device, torch.dtype] = {}
        convs: list[nn.Module] = []
        n_in = c
        for k, s in CONVS:
            convs += [nn.Conv2d(e * n_in, e * FILTERS, k, stride=s, groups=e), nn.LeakyReLU(0.01)]
            n_in = FILTERS
        self.convs = nn.Sequential(*convs).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
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
        """(N, D) features -> (N, C, H, W) images in the convolutions' dtype and channels-last memory (a view of
        (H, W, C) images). uint8 pixels keep their 0-255 values: the first convolution's weights carry the 1/255
        (one pass over the images fewer)."""
        if x.device not in self._dtypes:
            self._dtypes[x.device] = conv_dtype(self.precision, x.device)
        img = x[:, :self.obs_dim].to(self._dtypes[x.device])
        img = img.reshape(len(x), *self.obs_shape)
        img = img if self.channels_first else img.permute(0, 3, 1, 2)
        return img.contiguous(memory_format=torch.channels_last)

    def _trunk(self, img: torch.Tensor, member: int) -> torch.Tensor:
        """One member's convolutions on (N, C, H, W) images -> (N, F*h*w). The weights are the grouped layers'
        slices for this member: one small convolution per member runs faster on a CPU than the grouped one."""
        h, rows = img, slice(member * FILTERS, (member + 1) * FILTERS)
        for i, conv in enumerate(self.convs):
            if isinstance(conv, nn.Conv2d):
                weight = conv.weight[rows] / 255.0 if i == 0 and self.uint8 else conv.weight[rows]
                bias = None if conv.bias is None else conv.bias[rows].to(h.dtype)
                h = nn.functional.conv2d(h, weight.to(h.dtype), bias, stride=conv.stride)
            else:
                h = conv(h)
        return h.reshape(len(h), -1).float()

    def _head(self, trunks: list[torch.Tensor], acts: torch.Tensor) -> torch.Tensor:
        """Each member's conv features [(N, F*h*w)] * E and actions (E, N, A) -> (E, N) rewards."""
        return self.dense(torch.cat([torch.stack(trunks), acts], dim=-1)).squeeze(-1)

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        """Every member on the same images (converted once)."""
        flat = x.reshape(-1, x.shape[-1])
        outs = []
        for part in flat.split(self.chunk):
            img = self._images(part)
            acts = part[:, self.obs_dim:].float().expand(self.members, -1, -1)
            outs.append(self._head([self._trunk(img, i) for i in range(self.members)], acts))
        return torch.cat(outs, dim=1).reshape(self.members, *x.shape[:-1])

    def per_member(self, x: torch.Tensor) -> torch.Tensor:
        e = self.members
        flat = x.reshape(e, -1, x.shape[-1])
        outs = []
        for part in flat.split(self.chunk, dim=1):
            trunks = [self._trunk(self._images(part[i]), i) for i in range(e)]
            outs.append(self._head(trunks, part[..., self.obs_dim:].float()))
        return torch.cat(outs, dim=1).reshape(x.shape[:-1])

    def own_rates(self) -> list[tuple[nn.Parameter, float]]:
        return []

    def penalised_weights(self) -> Iterator[torch.Tensor]:
        for m in self.modules():
            if isinstance(m, (EnsembleLinear, nn.Conv2d)):
                yield m.weight
