"""The reward model for text: an ensemble of small transformer encoders reading prompt and completion.

A completion is a clip of one step (`Clip.prompt`, `Clip.completion`); its features are one row of token ids,
(1, P + C): the prompt's last P tokens in the first P slots (left-padded), the completion's first C tokens in the
rest (right-padded), -1 for padding. The slot says which side a token is on, so position embeddings carry the
segment. Each member is its own encoder (not one shared backbone with E heads): the members must disagree where
the labels leave them free to, for disagreement-based pair selection and for the bootstrap to mean anything, and a
shared backbone would make them agree on everything but the last layer. The E encoders are evaluated together as
batched matrix products (weights stacked on a leading member axis), so there is no Python loop over members.

The body plugs into the same `RewardEnsemble` as the MLP and CNN bodies, so `RewardTrainer` and `EnsembleSelector`
use it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from prefrl.config import RewardModelConfig
from prefrl.core.data import Clip
from prefrl.core.reward.model import RewardEnsemble

PAD = -1


@dataclass(frozen=True)
class TextRewardConfig:
    """The text reward model's shape; members, width (`hidden`), depth (`layers`) and training come from
    `RewardModelConfig`."""

    max_prompt_tokens: int = 16
    """Prompt tokens read (the last ones)."""
    max_completion_tokens: int = 24
    """Completion tokens read (the first ones)."""
    heads: int = 2
    pool: Literal["sum", "mean"] = "sum"
    """How the per-token rewards of a completion make its reward. sum (over its tokens, divided by the constant
    `max_completion_tokens`): a return, as the Gym side sums per-step rewards over a clip, and the shape of a
    score that counts things in the completion; a token adds to the reward, so a short completion is not worth a
    long one of the same tokens. mean: length-blind, and a policy under a KL penalty summed over tokens learnt to
    write two letters ("dd") that the reward model scored like sixteen (the labels held no short completions)."""
    blocks: int = 0
    """Self-attention blocks over prompt and completion whose states add a per-token reward of their own. Off by
    default: on the letter task with 300 labels they memorised the training pairs (held-out accuracy 0.55-0.60)
    where the cross-attention match alone generalises (0.88)."""


def _param(*shape: int, std: float) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) * std)


class EnsembleLayerNorm(nn.Module):
    def __init__(self, members: int, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, 1, width))
        self.bias = nn.Parameter(torch.zeros(members, 1, 1, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (E, N, L, d)
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class EnsembleBlock(nn.Module):
    """One pre-norm transformer encoder block per member: (E, N, L, d) -> (E, N, L, d)."""

    def __init__(self, members: int, width: int, heads: int) -> None:
        super().__init__()
        std = 1 / math.sqrt(width)
        self.heads = heads
        self.ln1, self.ln2 = EnsembleLayerNorm(members, width), EnsembleLayerNorm(members, width)
        self.qkv = _param(members, width, 3 * width, std=std)
        self.proj = _param(members, width, width, std=std)
        self.up = _param(members, width, 4 * width, std=std)
        self.up_bias = nn.Parameter(torch.zeros(members, 1, 1, 4 * width))
        self.down = _param(members, 4 * width, width, std=std / 2)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        e, n, length, d = x.shape
        q, k, v = torch.einsum("enld,edk->enlk", self.ln1(x), self.qkv).chunk(3, dim=-1)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(e * n, length, self.heads, d // self.heads).transpose(1, 2)

        att = F.scaled_dot_product_attention(split(q), split(k), split(v),
                                             attn_mask=key_mask.reshape(e * n, 1, 1, length))
        x = x + torch.einsum("enld,edk->enlk", att.transpose(1, 2).reshape(e, n, length, d), self.proj)
        h = F.gelu(torch.einsum("enld,edk->enlk", self.ln2(x), self.up) + self.up_bias)
        return x + torch.einsum("enlk,ekd->enld", h, self.down)


class TextBody(nn.Module):
    """E transformer encoders over (prompt, completion) token rows; each reads out one scalar: the sum (or mean,
    `pool`) over the completion's tokens of a per-token reward. Implements `prefrl.core.reward.model.Body`."""

    def __init__(self, vocab_size: int, cfg: RewardModelConfig, text: TextRewardConfig) -> None:
        super().__init__()
        e, d = cfg.members, cfg.hidden
        if d % text.heads:
            raise ValueError(f"width {d} is not a multiple of {text.heads} heads")
        self.members = e
        self.prompt_len = text.max_prompt_tokens
        self.pool = text.pool
        self.length = text.max_prompt_tokens + text.max_completion_tokens
        self.tok = _param(e, vocab_size, d, std=0.5)
        self.pos = _param(e, 1, self.length, d, std=0.02)
        self.blocks = nn.ModuleList(EnsembleBlock(e, d, text.heads) for _ in range(text.blocks))
        self.ln = EnsembleLayerNorm(e, d)
        self.head = _param(e, d, std=1 / math.sqrt(d))
        self.state_head = _param(e, d, std=1 / math.sqrt(d))
        self.match = _param(e, d, std=1 / math.sqrt(d))
        self.query = _param(e, d, std=1 / math.sqrt(d))

    def encode(self, obs: np.ndarray | torch.Tensor, acts: np.ndarray | torch.Tensor,
               device: torch.device) -> torch.Tensor:
        """Rows of token ids are the features already."""
        return torch.as_tensor(obs, dtype=torch.float32, device=device)

    def fit_inputs(self, x: torch.Tensor) -> None:
        pass

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        return self.per_member(x.unsqueeze(0).expand(self.members, *x.shape))

    def per_member(self, x: torch.Tensor) -> torch.Tensor:
        e, lead = x.shape[0], x.shape[1:-1]
        ids = x.reshape(e, -1, self.length).long()
        present = ids != PAD
        members = torch.arange(e, device=x.device).view(e, 1, 1)
        emb = self.tok[members, ids.clamp_min(0)]  # (E, N, L, d)
        completion = present.clone()
        completion[..., :self.prompt_len] = False
        prompt = present & ~completion
        # per-token reward: the token alone (a linear read of its embedding), plus how well it matches the prompt:
        # a bilinear product of its embedding with the prompt's embeddings pooled by cross-attention (a learned
        # query over the prompt's slots and tokens), which lets "completion agrees with prompt" be learnt from few
        # labels; plus, with `blocks`, a read of self-attention states over prompt and completion
        score = torch.einsum("enld,ed->enl", emb + self.pos, self.query).masked_fill(~prompt, -1e9)
        context = torch.einsum("enl,enld->end", score.softmax(-1) * prompt.any(-1, keepdim=True), emb)
        per_token = (torch.einsum("enld,ed->enl", emb, self.head)
                     + torch.einsum("enld,end,ed->enl", emb, context, self.match))
        if len(self.blocks):
            h = emb + self.pos
            key_mask = present | ~present.any(-1, keepdim=True)  # a row with no tokens attends to its padding
            for block in self.blocks:
                h = block(h, key_mask)
            per_token = per_token + torch.einsum("enld,ed->enl", self.ln(h), self.state_head)
        count = completion.sum(-1).clamp_min(1) if self.pool == "mean" else self.length - self.prompt_len
        return ((per_token * completion).sum(-1) / count).reshape(e, *lead)

    def own_rates(self) -> list[tuple[nn.Parameter, float]]:
        return []

    def penalised_weights(self) -> Iterator[torch.Tensor]:
        yield self.tok
        yield self.pos
        yield self.head
        yield self.match
        yield self.query
        for b in self.blocks:
            yield from (b.qkv, b.proj, b.up, b.down)  # type: ignore[misc]


class TextRewardModel(RewardEnsemble):
    """`RewardModel` for prompt-completion clips, with `reward_texts` for RL on text.

    Example:
        >>> model = TextRewardModel(tokenizer, RewardModelConfig(hidden=32, layers=1))
        >>> RewardTrainer(model, RewardModelConfig(hidden=32, layers=1), rng).fit(store)
        >>> model.reward_texts(["letter: c\\n"], ["ccca"])  # (1,) normalised reward
    """

    def __init__(self, tokenizer, cfg: RewardModelConfig, text: TextRewardConfig = TextRewardConfig()) -> None:
        super().__init__(TextBody(len(tokenizer), cfg, text))
        self.tokenizer = tokenizer
        self.text = text

    def token_rows(self, prompts: Sequence[str], completions: Sequence[str]) -> torch.Tensor:
        """Features of prompt-completion pairs: (N, 1, P + C) token ids, -1 where padded."""
        p_len, c_len = self.text.max_prompt_tokens, self.text.max_completion_tokens
        rows = np.full((len(prompts), 1, p_len + c_len), PAD, dtype=np.float32)
        p_ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        c_ids = self.tokenizer(list(completions), add_special_tokens=False)["input_ids"]
        for i, (p, c) in enumerate(zip(p_ids, c_ids)):
            p, c = p[-p_len:] if p else [], c[:c_len]
            rows[i, 0, p_len - len(p):p_len] = p
            rows[i, 0, p_len:p_len + len(c)] = c
        return torch.as_tensor(rows, device=self.device)

    def features(self, clip: Clip) -> torch.Tensor:
        if clip.completion is None:
            raise ValueError("a text reward model reads clips with a prompt and a completion; this clip has none")
        return self.token_rows([clip.prompt or ""], [clip.completion])[0]

    @torch.no_grad()
    def normalise_outputs(self, clips: Sequence[Clip]) -> None:
        if not clips:
            return
        clips = list(clips)[-10_000:]
        r = self._body().shared(self.token_rows([c.prompt or "" for c in clips],
                                                [c.completion or "" for c in clips])[:, 0])  # (E, N)
        self.out_mean.copy_(r.mean(1))
        self.out_std.copy_(r.std(1).clamp_min(1e-6) if r.shape[1] > 1 else torch.ones_like(self.out_std))

    def absorbing_reward(self) -> float:
        return 0.0  # a completion has no absorbing state

    def live_floor(self) -> float:
        return math.inf

    @torch.no_grad()
    def reward_texts(self, prompts: Sequence[str], completions: Sequence[str],
                     batch_size: int = 256) -> np.ndarray:
        """The ensemble's mean normalised reward of each prompt-completion pair: (N,) (zeros until fitted)."""
        if not self.fitted:
            return np.zeros(len(prompts), dtype=np.float32)
        out = [self.normalised(self.token_rows(prompts[i:i + batch_size], completions[i:i + batch_size])[:, 0])
               .mean(0).cpu().numpy() for i in range(0, len(prompts), batch_size)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
